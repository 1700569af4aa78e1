//! `google.protobuf.FieldMask` for updates: the JSON form is one string of
//! comma-separated camelCase paths; each path names a field of the resource,
//! possibly nested through singular messages. A repeated or map field may only
//! end a path. The fields a path names are copied from the request into the
//! stored resource, absent ones cleared.

use super::errors::{GcpError, GcpResult};
use super::schema::{Kind, Msg};
use serde_json::{Map, Value};

/// A checked mask: each path as the list of camelCase field names it walks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Mask {
    /// `*`: the whole resource is replaced.
    All,
    Paths(Vec<Vec<&'static str>>),
}

/// Paths a caller can never update, e.g. the resource's own name.
pub(crate) type Immutable<'a> = &'a [&'a str];

pub(crate) fn parse(msg: &'static Msg, raw: &str, immutable: Immutable) -> GcpResult<Mask> {
    let mut paths = Vec::new();
    for path in raw.split(',').map(str::trim) {
        if path.is_empty() {
            return Err(GcpError::invalid(format!("Invalid field mask {raw:?}: empty path")));
        }
        if path == "*" {
            return Ok(Mask::All);
        }
        paths.push(resolve(msg, path, immutable)?);
    }
    Ok(Mask::Paths(paths))
}

fn resolve(msg: &'static Msg, path: &str, immutable: Immutable) -> GcpResult<Vec<&'static str>> {
    let invalid = |why: String| GcpError::invalid(format!("Invalid field mask path \"{path}\": {why}"));
    let mut here = msg;
    let mut walked: Vec<&'static str> = Vec::new();
    let segments: Vec<&str> = path.split('.').collect();
    for (i, seg) in segments.iter().enumerate() {
        let field = here
            .field(seg)
            .ok_or_else(|| invalid(format!("no field \"{seg}\" in {}", here.name)))?;
        walked.push(field.json);
        if field.output_only {
            return Err(invalid(format!("\"{}\" is output only", walked.join("."))));
        }
        let last = i + 1 == segments.len();
        match field.kind {
            Kind::Msg(sub) => here = sub,
            Kind::Msgs(_) | Kind::Strs | Kind::StrMap if !last => {
                return Err(invalid(format!(
                    "\"{}\" is a repeated or map field and must end the path",
                    walked.join(".")
                )));
            }
            _ if !last => return Err(invalid(format!("\"{}\" has no subfields", walked.join(".")))),
            _ => {}
        }
    }
    let joined = walked.join(".");
    if immutable.contains(&joined.as_str()) {
        return Err(invalid(format!("\"{joined}\" cannot be updated")));
    }
    Ok(walked)
}

/// Copies each masked field of `request` into `target`; a masked field the
/// request leaves out is cleared in `target`.
pub(crate) fn apply(target: &mut Map<String, Value>, request: &Map<String, Value>, paths: &[Vec<&'static str>]) {
    for path in paths {
        let value = lookup(request, path).cloned();
        set(target, path, value);
    }
}

fn lookup<'a>(obj: &'a Map<String, Value>, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let v = obj.get(*first)?;
    if rest.is_empty() {
        return Some(v);
    }
    match v {
        Value::Object(sub) => lookup(sub, rest),
        _ => None,
    }
}

fn set(obj: &mut Map<String, Value>, path: &[&str], value: Option<Value>) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        match value {
            Some(v) => obj.insert(first.to_string(), v),
            None => obj.remove(*first),
        };
        return;
    }
    if value.is_none() && !obj.contains_key(*first) {
        // Clearing inside a message that is not there leaves it absent.
        return;
    }
    let entry = obj
        .entry(first.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(sub) = entry {
        set(sub, rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::FUNCTION;
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn paths_resolve_through_messages_in_either_case() -> GcpResult<()> {
        let m = parse(
            &FUNCTION,
            "serviceConfig.serviceAccountEmail,labels,build_config.docker_repository",
            &[],
        )?;
        assert_eq!(
            m,
            Mask::Paths(vec![
                vec!["serviceConfig", "serviceAccountEmail"],
                vec!["labels"],
                vec!["buildConfig", "dockerRepository"],
            ])
        );
        assert_eq!(parse(&FUNCTION, "*", &[])?, Mask::All);
        Ok(())
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in [
            "serviceConfig.nope",
            "nope",
            "labels.team",
            "serviceConfig.ingressSettings.x",
            "serviceConfig.uri",
            "state",
            "serviceConfig.secretVolumes.secret",
            "labels,",
            "name",
        ] {
            assert!(parse(&FUNCTION, bad, &["name"]).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn masked_fields_are_copied_or_cleared_and_others_kept() -> GcpResult<()> {
        let mut target = obj(json!({
            "labels": {"a": "b"},
            "serviceConfig": {"serviceAccountEmail": "old@x", "vpcConnector": "c", "ingressSettings": "ALLOW_ALL"}
        }));
        let request = obj(json!({
            "labels": {"z": "y"},
            "serviceConfig": {"serviceAccountEmail": "new@x", "ingressSettings": "ALLOW_INTERNAL_ONLY"}
        }));
        let Mask::Paths(paths) = parse(
            &FUNCTION,
            "serviceConfig.serviceAccountEmail,serviceConfig.vpcConnector",
            &[],
        )?
        else {
            return Err(GcpError::invalid("expected paths"));
        };
        apply(&mut target, &request, &paths);
        assert_eq!(
            Value::Object(target),
            json!({
                "labels": {"a": "b"},
                "serviceConfig": {"serviceAccountEmail": "new@x", "ingressSettings": "ALLOW_ALL"}
            })
        );
        let mut bare = Map::new();
        apply(&mut bare, &Map::new(), &[vec!["eventTrigger", "pubsubTopic"]]);
        assert!(bare.is_empty());
        Ok(())
    }
}
