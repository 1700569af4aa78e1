//! Whether the project's `_Default` log sink drops the function's logs
//! (`observability.gcp.requireLogsKept`): `logging.projects.sinks.get` of
//! `projects/P/sinks/_Default` over REST (no google-cloud-rust Logging
//! client in the tree; same credentials and caller as every call), and a
//! judge of each enabled exclusion's filter that evaluates only what it
//! understands: a conjunction (`AND`) of comparisons on the function's
//! resource labels and on severity. Any other filter is reported as not
//! evaluated, never passed as harmless.

use super::client::Caller;
use super::insights::RestApi;
use super::model::{ObservedFunction, SinkExclusion, SinkState};
use serde::Deserialize;

pub const LOGGING: &str = "https://logging.googleapis.com";

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Sink {
    exclusions: Vec<Exclusion>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Exclusion {
    name: String,
    filter: String,
    disabled: bool,
}

/// The `_Default` sink's exclusions, or why they could not be read.
pub async fn default_sink(logging: &RestApi, caller: &Caller, project: &str) -> SinkState {
    let name = format!("projects/{project}/sinks/_Default");
    let url = format!("{}/v2/{name}", logging.endpoint);
    let headers = match logging.headers().await {
        Ok(h) => h,
        Err(e) => return SinkState::NotObserved(e),
    };
    match caller
        .call("GetSink", &name, || logging.get::<Sink>(&url, headers.clone()))
        .await
    {
        Ok(sink) => SinkState::Observed(
            sink.exclusions
                .into_iter()
                .map(|e| SinkExclusion {
                    name: e.name,
                    filter: e.filter,
                    disabled: e.disabled,
                })
                .collect(),
        ),
        Err(e) => SinkState::NotObserved(e),
    }
}

/// What an exclusion does to the function's logs.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It drops (some of) them.
    Drops,
    /// It does not apply to them.
    Spares,
    /// Its filter is beyond what is evaluated here.
    NotEvaluated,
}

/// The log resources a 2nd gen function writes under: its Cloud Run
/// revision's, and the Cloud Functions view of it.
fn resources(o: &ObservedFunction) -> [Vec<(&'static str, String)>; 2] {
    let service = o.service.rsplit('/').next().unwrap_or_default().to_string();
    [
        vec![
            ("resource.type", "cloud_run_revision".to_string()),
            ("resource.labels.service_name", service),
            ("resource.labels.location", o.location.clone()),
        ],
        vec![
            ("resource.type", "cloud_function".to_string()),
            ("resource.labels.function_name", o.id.clone()),
            ("resource.labels.region", o.location.clone()),
        ],
    ]
}

/// Judge one exclusion filter against the function's resources.
pub fn judge(filter: &str, o: &ObservedFunction) -> Verdict {
    let mut terms = Vec::new();
    for raw in filter.split(" AND ") {
        let t = raw.trim();
        if t.is_empty() || t.contains(['(', ')']) || t.contains(" OR ") || t.starts_with("NOT ") || t.starts_with('-') {
            return Verdict::NotEvaluated;
        }
        let Some((key, op, value)) = comparison(t) else {
            return Verdict::NotEvaluated;
        };
        terms.push((key, op, value));
    }
    if terms.is_empty() {
        return Verdict::NotEvaluated;
    }
    let applies = |res: &[(&'static str, String)]| {
        terms.iter().all(|(key, op, value)| match *key {
            // Any severity bound still drops some of the function's logs.
            "severity" => true,
            k => res.iter().find(|(rk, _)| *rk == k).is_some_and(|(_, have)| match *op {
                "=" => have == value,
                ":" => have.contains(value.as_str()),
                _ => false,
            }),
        })
    };
    let known = |k: &str| k == "severity" || resources(o).iter().any(|r| r.iter().any(|(rk, _)| *rk == k));
    if !terms.iter().all(|(k, _, _)| known(k)) {
        return Verdict::NotEvaluated;
    }
    if resources(o).iter().any(|r| applies(r)) {
        Verdict::Drops
    } else {
        Verdict::Spares
    }
}

/// `key OP value` with OP one of `=`, `:`, `<`, `<=`, `>`, `>=` (the last
/// four for severity only); the value unquoted.
fn comparison(t: &str) -> Option<(&str, &'static str, String)> {
    for op in ["<=", ">=", "=", ":", "<", ">"] {
        if let Some((k, v)) = t.split_once(op) {
            let key = k.trim();
            if key.is_empty() || key.contains([' ', '!']) {
                return None;
            }
            let op: &'static str = op;
            if matches!(op, "<" | "<=" | ">" | ">=") && key != "severity" {
                return None;
            }
            let value = v.trim().trim_matches('"').to_string();
            return Some((key, op, value));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function() -> ObservedFunction {
        ObservedFunction {
            id: "orders".into(),
            location: "europe-west1".into(),
            service: "projects/p/locations/europe-west1/services/orders".into(),
            ..ObservedFunction::default()
        }
    }

    #[test]
    fn exclusions_are_judged_only_as_far_as_they_are_understood() {
        let o = function();
        let drops = [
            r#"resource.type="cloud_run_revision" AND resource.labels.service_name="orders""#,
            r#"resource.type="cloud_function" AND resource.labels.function_name="orders" AND severity<ERROR"#,
            r#"resource.type="cloud_run_revision""#,
            r#"resource.labels.service_name:"ord""#,
        ];
        for f in drops {
            assert_eq!(judge(f, &o), Verdict::Drops, "{f}");
        }
        let spares = [
            r#"resource.type="gce_instance""#,
            r#"resource.type="cloud_run_revision" AND resource.labels.service_name="billing""#,
        ];
        for f in spares {
            assert_eq!(judge(f, &o), Verdict::Spares, "{f}");
        }
        let unknown = [
            r#"resource.type="cloud_run_revision" OR severity<ERROR"#,
            r#"NOT resource.type="gce_instance""#,
            r#"jsonPayload.user="x""#,
            r#"sample(insertId, 0.9)"#,
            "",
        ];
        for f in unknown {
            assert_eq!(judge(f, &o), Verdict::NotEvaluated, "{f}");
        }
    }
}
