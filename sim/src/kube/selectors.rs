//! Label and field selectors, as list and watch take them.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector (`a=b,c!=d,e in (x,y),f notin (z),g,!h`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

/// Split on commas that are not inside parentheses.
fn terms(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c)
            }
            ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn set(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for t in terms(s) {
            let r = if let Some((k, v)) = t.split_once("!=") {
                Requirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = t.split_once("==") {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = t.split_once('=') {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = t.split_once(" notin ") {
                Requirement::NotIn(k.trim().into(), set(v).ok_or_else(|| format!("bad set in {t:?}"))?)
            } else if let Some((k, v)) = t.split_once(" in ") {
                Requirement::In(k.trim().into(), set(v).ok_or_else(|| format!("bad set in {t:?}"))?)
            } else if let Some(k) = t.strip_prefix('!') {
                Requirement::NotExists(k.trim().into())
            } else if t.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
                Requirement::Exists(t)
            } else {
                return Err(format!("unable to parse requirement: {t:?}"));
            };
            reqs.push(r);
        }
        Ok(LabelSelector(reqs))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v),
            Requirement::NotEquals(k, v) => get(k) != Some(v),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A field selector: `path=value` / `path!=value` terms on dotted paths
/// (`metadata.name`, `involvedObject.uid`, ...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let mut v = Vec::new();
        for t in terms(s) {
            if let Some((k, val)) = t.split_once("!=") {
                v.push((k.trim().to_string(), false, val.trim().to_string()));
            } else if let Some((k, val)) = t.split_once("==").or_else(|| t.split_once('=')) {
                v.push((k.trim().to_string(), true, val.trim().to_string()));
            } else {
                return Err(format!("invalid field selector: {t:?}"));
            }
        }
        Ok(FieldSelector(v))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, want)| {
            let pointer = format!("/{}", path.replace('.', "/"));
            let have = match obj.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (have == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let o = json!({"metadata": {"labels": {"app": "zerofn", "tier": "ctl"}}});
        for (sel, want) in [
            ("app=zerofn", true),
            ("app==zerofn,tier!=web", true),
            ("tier in (web, ctl)", true),
            ("tier notin (ctl)", false),
            ("app", true),
            ("!app", false),
            ("missing", false),
            ("", true),
        ] {
            assert_eq!(LabelSelector::parse(sel).unwrap().matches(&o), want, "{sel}");
        }
        assert!(LabelSelector::parse("a in x").is_err());
    }

    #[test]
    fn field_selectors() {
        let o = json!({"metadata": {"name": "x", "namespace": "ns"}, "involvedObject": {"kind": "Pod", "uid": "u"}});
        assert!(
            FieldSelector::parse("metadata.name=x,metadata.namespace==ns")
                .unwrap()
                .matches(&o)
        );
        assert!(
            FieldSelector::parse("involvedObject.uid=u,involvedObject.kind!=Node")
                .unwrap()
                .matches(&o)
        );
        assert!(!FieldSelector::parse("metadata.name=y").unwrap().matches(&o));
        assert!(
            FieldSelector::parse("involvedObject.name=").unwrap().matches(&o),
            "absent reads as empty"
        );
    }
}
