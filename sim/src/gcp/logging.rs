//! Cloud Logging's `logging.projects.sinks.get` (discovery document
//! `logging.v2.json`): `GET v2/projects/{p}/sinks/{sink}`. Every project has
//! its `_Default` sink (to the `_Default` bucket, Google's own filter), with
//! the exclusions seeded by [`super::GcpWorld::default_sink_exclusion`].
//! Other sinks do not exist here.

use super::errors::{GcpError, GcpResult};
use super::request::Query;
use super::world::State;
use serde_json::{Value, json};

pub(crate) fn handle_get_sink(state: &State, query: &Query, project: &str, sink: &str) -> GcpResult<Value> {
    query.check(&[])?;
    let resource = format!("projects/{project}/sinks/{sink}");
    let p = state
        .project(project)
        .ok_or_else(|| GcpError::project_denied("logging.sinks.get", &resource))?;
    if sink != "_Default" {
        return Err(GcpError::not_found(format!("Sink {sink} does not exist")));
    }
    let exclusions = state.sink_exclusions.get(&p.id).cloned().unwrap_or_default();
    let mut out = json!({
        "name": "_Default",
        "destination": format!("logging.googleapis.com/projects/{}/locations/global/buckets/_Default", p.id),
        "filter": "NOT LOG_ID(\"cloudaudit.googleapis.com/activity\") AND NOT LOG_ID(\"externalaudit.googleapis.com/activity\") AND NOT LOG_ID(\"cloudaudit.googleapis.com/system_event\") AND NOT LOG_ID(\"externalaudit.googleapis.com/system_event\") AND NOT LOG_ID(\"cloudaudit.googleapis.com/access_transparency\") AND NOT LOG_ID(\"externalaudit.googleapis.com/access_transparency\")",
        "writerIdentity": format!("serviceAccount:service-{}@gcp-sa-logging.iam.gserviceaccount.com", p.number),
        "createTime": "2026-01-01T00:00:00Z",
        "updateTime": "2026-01-01T00:00:00Z",
    });
    if !exclusions.is_empty() {
        out["exclusions"] = Value::Array(exclusions);
    }
    Ok(out)
}
