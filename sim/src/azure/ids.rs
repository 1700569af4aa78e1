//! Small helpers shared by the providers: GUIDs, ARM resource ids (matched
//! case-insensitively, as ARM does), the query string and timestamps.

use crate::scaffold::percent_decode;
use std::collections::BTreeMap;

/// A random version-4 GUID in ARM's lower-case spelling.
pub fn guid() -> String {
    let hex = |n: usize| {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[fastrand::usize(..16)]))
            .collect::<String>()
    };
    let variant = char::from(b"89ab"[fastrand::usize(..4)]);
    format!("{}-{}-4{}-{variant}{}-{}", hex(8), hex(4), hex(3), hex(3), hex(12))
}

pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

pub fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// Query parameters by name; the first of repeated names wins. `None` when a
/// value is not valid percent-encoding.
pub fn parse_query(raw: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.entry(percent_decode(k, true).ok()?)
            .or_insert(percent_decode(v, true).ok()?);
    }
    Some(out)
}

pub fn eq_ci(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Whether `inner` is `outer` or lies beneath it, comparing whole segments.
pub fn scope_contains(outer: &str, inner: &str) -> bool {
    let (o, i) = (
        outer.trim_end_matches('/').to_ascii_lowercase(),
        inner.to_ascii_lowercase(),
    );
    o.is_empty() || i == o || i.starts_with(&format!("{o}/"))
}

/// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{v}/subnets/{n}`
pub fn is_subnet_id(id: &str) -> bool {
    let segs: Vec<&str> = id.split('/').collect();
    segs.len() == 11
        && segs[0].is_empty()
        && eq_ci(segs[1], "subscriptions")
        && eq_ci(segs[3], "resourceGroups")
        && eq_ci(segs[5], "providers")
        && eq_ci(segs[6], "Microsoft.Network")
        && eq_ci(segs[7], "virtualNetworks")
        && eq_ci(segs[9], "subnets")
        && segs.iter().skip(1).all(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_guids() {
        assert!(is_guid(&guid()));
        assert!(!is_guid("not-a-guid"));
    }

    #[test]
    fn scopes_nest_by_segment() {
        assert!(scope_contains("/subscriptions/a", "/subscriptions/a/resourceGroups/x"));
        assert!(!scope_contains("/subscriptions/a", "/subscriptions/ab"));
        assert!(scope_contains("/", "/subscriptions/a"));
    }
}
