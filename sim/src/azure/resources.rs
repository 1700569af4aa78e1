//! Microsoft.Resources tags at a scope (`{scope}/providers/Microsoft.Resources/tags/default`):
//! the Tags_GetAtScope, Tags_CreateOrUpdateAtScope, Tags_UpdateAtScope and
//! Tags_DeleteAtScope operations, for scopes that are sites or slots.

use super::errors::{ArmError, ArmResult};
use super::ids::eq_ci;
use super::server::{Reply, Req};
use super::world::{State, key};
use serde_json::{Map, Value, json};

/// At most 50 tags per resource; names up to 512 characters, values up to 256.
const MAX_TAGS: usize = 50;
const MAX_NAME: usize = 512;
const MAX_VALUE: usize = 256;
/// Characters a tag name may not hold.
const FORBIDDEN: &[char] = &['<', '>', '%', '&', '\\', '?', '/'];

/// `at` is the index of the `providers` segment; what precedes it is the scope.
pub(crate) fn route(state: &mut State, req: &Req, at: usize) -> ArmResult<Reply> {
    let rest: Vec<String> = req.segs[at + 2..].iter().map(|s| s.to_ascii_lowercase()).collect();
    if rest != ["tags", "default"] {
        return Err(req.no_route());
    }
    let scope = &req.segs[..at];
    let k = site_key(state, scope)?;
    let scope_path = format!("/{}", scope.join("/"));
    match req.method {
        "GET" => {}
        "PUT" => {
            let tags = tags_of(&req.json()?)?;
            set(state, &k, tags);
        }
        "PATCH" => {
            let body = req.json()?;
            let tags = tags_of(&body)?;
            let current = state.sites.get(&k).map(|s| s.tags.clone()).unwrap_or_default();
            let next = match body.get("operation").and_then(Value::as_str) {
                Some("Replace") => tags,
                Some("Merge") => {
                    let mut m = current;
                    m.extend(tags);
                    m
                }
                // Name/value pairs: a tag goes only while it holds the given
                // value (an empty value matches any).
                Some("Delete") => current
                    .into_iter()
                    .filter(|(name, v)| {
                        !tags
                            .get(name)
                            .is_some_and(|want| want.as_str() == Some("") || want == v)
                    })
                    .collect(),
                _ => {
                    return Err(ArmError::invalid_content(
                        "operation",
                        "expected one of Replace, Merge, Delete",
                    ));
                }
            };
            check(&next)?;
            set(state, &k, next);
        }
        "DELETE" => {
            set(state, &k, Map::new());
            return Ok(Reply {
                status: 200,
                body: None,
                headers: Vec::new(),
            });
        }
        _ => return Err(req.not_allowed()),
    }
    let tags = state.sites.get(&k).map(|s| s.tags.clone()).unwrap_or_default();
    Ok(Reply::ok(json!({
        "id": format!("{scope_path}/providers/Microsoft.Resources/tags/default"),
        "name": "default",
        "type": "Microsoft.Resources/tags",
        "properties": {"tags": tags},
    })))
}

fn set(state: &mut State, k: &(String, String), tags: Map<String, Value>) {
    if let Some(site) = state.sites.get_mut(k) {
        site.tags = tags;
    }
}

/// The site or slot a scope names; other scopes are not served.
pub(crate) fn site_key(state: &State, scope: &[&str]) -> ArmResult<(String, String)> {
    let (rg, name) = match scope {
        [s, _, r, rg, p, ns, t, name] | [s, _, r, rg, p, ns, t, name, _, _]
            if eq_ci(s, "subscriptions")
                && eq_ci(r, "resourceGroups")
                && eq_ci(p, "providers")
                && eq_ci(ns, "Microsoft.Web")
                && eq_ci(t, "sites") =>
        {
            (rg, name)
        }
        _ => {
            return Err(ArmError::no_route("tags at", &format!("/{}", scope.join("/"))));
        }
    };
    if !state.resource_groups.contains_key(&rg.to_ascii_lowercase()) {
        return Err(ArmError::resource_group_not_found(rg));
    }
    let full = match scope {
        [.., slots, slot] if scope.len() == 10 && eq_ci(slots, "slots") => format!("{name}/{slot}"),
        [..] if scope.len() == 10 => return Err(ArmError::no_route("tags at", &format!("/{}", scope.join("/")))),
        _ => name.to_string(),
    };
    let k = key(rg, &full);
    if !state.sites.contains_key(&k) {
        return Err(ArmError::resource_not_found("Microsoft.Web/sites", &full, rg));
    }
    Ok(k)
}

/// `properties.tags` of a Tags body: an object of strings (required).
fn tags_of(body: &Map<String, Value>) -> ArmResult<Map<String, Value>> {
    let Some(tags) = body
        .get("properties")
        .and_then(|p| p.get("tags"))
        .and_then(Value::as_object)
    else {
        return Err(ArmError::invalid_content("properties.tags", "expected an object"));
    };
    if let Some((name, _)) = tags.iter().find(|(_, v)| !v.is_string()) {
        return Err(ArmError::invalid_content(
            &format!("properties.tags.{name}"),
            "expected a string",
        ));
    }
    check(tags)?;
    Ok(tags.clone())
}

fn check(tags: &Map<String, Value>) -> ArmResult<()> {
    if tags.len() > MAX_TAGS {
        return Err(ArmError::bad_request(format!(
            "A resource can hold at most {MAX_TAGS} tags; the result would hold {}.",
            tags.len()
        )));
    }
    for (name, v) in tags {
        if name.is_empty() || name.len() > MAX_NAME || name.contains(FORBIDDEN) {
            return Err(ArmError::new(
                400,
                "InvalidTagNameCharacters",
                format!("The tag name '{name}' is empty, longer than {MAX_NAME} characters or holds one of <>%&\\?/."),
            ));
        }
        if v.as_str().is_some_and(|v| v.len() > MAX_VALUE) {
            return Err(ArmError::new(
                400,
                "InvalidTagValueLength",
                format!("The value of tag '{name}' is longer than {MAX_VALUE} characters."),
            ));
        }
    }
    Ok(())
}
