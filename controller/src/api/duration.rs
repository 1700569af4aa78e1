//! Durations as the API and the CLI write them: `45s`, `5m`, `1h30m`
//! (`patterns::DURATION`), and days for look-back windows (`90d`,
//! `patterns::WINDOW`). One parser for `spec.resyncInterval`,
//! `identity.unusedPermissions` and every CLI flag.
//!
//! Not `kube::core::Duration`: it takes Go's whole syntax (`1.5h`, `300ms`,
//! `-5m`), which the CRD's pattern refuses, so the CLI would accept what a
//! posture may not say, and a zero or negative interval would still need
//! its own check.

use std::time::Duration;

/// `5m`, `1h30m`, `45s`, `90d` → Duration; anything else (a bare number, another
/// unit, zero) → None.
pub fn parse(s: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut n = String::new();
    for c in s.chars() {
        match c {
            '0'..='9' => n.push(c),
            's' | 'm' | 'h' | 'd' => {
                let v: u64 = n.parse().ok()?;
                let unit = match c {
                    's' => 1,
                    'm' => 60,
                    'h' => 3600,
                    _ => 86_400,
                };
                total = total.checked_add(v.checked_mul(unit)?)?;
                n.clear();
            }
            _ => return None,
        }
    }
    (n.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_the_crd_pattern() {
        assert_eq!(parse("45s"), Some(Duration::from_secs(45)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse("0s"), None);
        assert_eq!(parse("5"), None);
        assert_eq!(parse("90d"), Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse("5w"), None);
        assert_eq!(parse("1.5h"), None);
        assert_eq!(parse("-5m"), None);
    }

    #[test]
    fn an_interval_too_large_to_count_is_refused_not_wrapped() {
        assert_eq!(parse(&format!("{}h", u64::MAX / 2)), None);
    }
}
