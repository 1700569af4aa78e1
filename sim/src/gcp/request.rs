//! Reading a REST request the way Google's front end does: percent-decoded
//! path segments, a `:verb` suffix, query parameters checked against the
//! method's request message, page tokens, and RFC 3339 times.

use super::errors::{GcpError, GcpResult};
use crate::scaffold::{self, BadEncoding};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// System parameters every method accepts (the `parameters` block at the top
/// of each discovery document), spelled as the front end accepts them.
const SYSTEM_PARAMS: &[&str] = &[
    "$alt",
    "alt",
    "$.xgafv",
    "prettyPrint",
    "$prettyPrint",
    "key",
    "quotaUser",
    "access_token",
    "oauth_token",
    "upload_protocol",
    "uploadType",
    "fields",
    "$fields",
    "callback",
];

pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> GcpResult<String> {
    scaffold::percent_decode(s, plus_is_space).map_err(|e| match e {
        BadEncoding::Escape => GcpError::invalid(format!("Invalid percent-encoding in {s:?}")),
        BadEncoding::Utf8 => GcpError::invalid(format!("Invalid UTF-8 in {s:?}")),
    })
}

/// Google's resource-id shape, `[a-z]([-a-z0-9]*[a-z0-9])?`, with a length
/// in `len`: function, project and service account ids.
pub(crate) fn is_resource_id(id: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A request path cut into decoded segments, with the custom verb of the
/// last segment (`projects/p:getIamPolicy`) split off.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Path {
    pub segments: Vec<String>,
    pub verb: Option<String>,
}

impl Path {
    pub fn parse(raw: &str) -> GcpResult<Path> {
        let trimmed = raw.strip_prefix('/').unwrap_or(raw);
        let mut segments = Vec::new();
        for s in trimmed.split('/') {
            segments.push(percent_decode(s, false)?);
        }
        let mut verb = None;
        if let Some(last) = segments.last_mut()
            && let Some(colon) = last.rfind(':')
        {
            verb = Some(last[colon + 1..].to_string());
            last.truncate(colon);
        }
        Ok(Path { segments, verb })
    }

    pub fn strs(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &str) -> GcpResult<Query> {
        let mut pairs = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((percent_decode(k, true)?, percent_decode(v, true)?));
        }
        Ok(Query { pairs })
    }

    /// Rejects what the front end rejects: a parameter the method's request
    /// message has no field for, a field given twice, and response formats
    /// other than JSON. An empty value is how the official clients send an
    /// unset optional field, so it binds to the field's default.
    pub fn check(&self, allowed: &[&str]) -> GcpResult<()> {
        let mut seen: Vec<&str> = Vec::new();
        for (k, v) in &self.pairs {
            if !allowed.contains(&k.as_str()) && !SYSTEM_PARAMS.contains(&k.as_str()) {
                return Err(GcpError::invalid(format!(
                    "Invalid JSON payload received. Unknown name \"{k}\": Cannot bind query parameter. \
                     Field '{k}' could not be found in request message."
                )));
            }
            if seen.contains(&k.as_str()) {
                return Err(GcpError::invalid(format!(
                    "Invalid JSON payload received. Unknown name \"{k}\": Cannot bind query parameter. \
                     '{k}' is a message type or a singular field given more than once."
                )));
            }
            seen.push(k);
            match k.as_str() {
                "$alt" | "alt" if !(v.is_empty() || v == "json" || v.starts_with("json;")) => {
                    return Err(GcpError::unimplemented(format!("response format alt={v}")));
                }
                "fields" | "$fields" if !v.is_empty() => {
                    return Err(GcpError::unimplemented("partial responses (fields=)"));
                }
                "callback" if !v.is_empty() => return Err(GcpError::unimplemented("JSONP (callback=)")),
                _ => {}
            }
        }
        Ok(())
    }

    /// The value of a parameter; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn int32(&self, name: &str) -> GcpResult<Option<i32>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<i32>()
                .map(Some)
                .map_err(|_| GcpError::invalid(format!("Invalid value at '{name}' (TYPE_INT32), \"{v}\""))),
        }
    }

    /// pageSize as the list methods read it: unset or 0 means the default,
    /// negative is refused, above the maximum is capped.
    pub fn page_size(&self, default: usize, max: usize) -> GcpResult<usize> {
        match self.int32("pageSize")? {
            None | Some(0) => Ok(default),
            Some(n) if n < 0 => Err(GcpError::invalid("page_size must not be negative")),
            Some(n) => Ok((n as usize).min(max)),
        }
    }
}

/// Page tokens are opaque to callers; binding one to the listing it came from
/// makes a token replayed against another parent fail as it does at Google.
pub(crate) fn page_token(scope: &str, offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{scope}\n{offset}"))
}

pub(crate) fn page_offset(token: Option<&str>, scope: &str) -> GcpResult<usize> {
    let Some(token) = token else { return Ok(0) };
    let bad = || GcpError::invalid(format!("Invalid page token: {token:?}"));
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (s, offset) = raw.rsplit_once('\n').ok_or_else(bad)?;
    if s != scope {
        return Err(bad());
    }
    offset.parse().map_err(|_| bad())
}

/// One page of `items` and the token for the next one, if any.
pub(crate) fn paginate<T: Clone>(items: &[T], offset: usize, size: usize, scope: &str) -> (Vec<T>, Option<String>) {
    let start = offset.min(items.len());
    let end = start.saturating_add(size).min(items.len());
    let next = (end < items.len()).then(|| page_token(scope, end));
    (items[start..end].to_vec(), next)
}

/// A list response: the page of `items` under `field` (left out when empty,
/// as proto3 JSON leaves out empty repeated fields) and `nextPageToken`.
pub(crate) fn list_page(field: &str, items: &[Value], offset: usize, size: usize, scope: &str) -> Value {
    let (page, next) = paginate(items, offset, size, scope);
    let mut out = json!({});
    if !page.is_empty() {
        out[field] = Value::Array(page);
    }
    if let Some(next) = next {
        out["nextPageToken"] = json!(next);
    }
    out
}

/// Now as an RFC 3339 UTC timestamp with nanoseconds, the form proto3 JSON
/// gives `google.protobuf.Timestamp`.
pub(crate) fn now_rfc3339() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub(crate) fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Whether `s` is an RFC 3339 timestamp as proto3 JSON writes one
/// (`2024-01-02T03:04:05[.frac](Z|±hh:mm)`).
pub(crate) fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i - start > 9 {
            return false;
        }
    }
    match &s[i..] {
        "Z" => true,
        tz => {
            let t = tz.as_bytes();
            t.len() == 6
                && (t[0] == b'+' || t[0] == b'-')
                && t[1..3].iter().all(u8::is_ascii_digit)
                && t[3] == b':'
                && t[4..6].iter().all(u8::is_ascii_digit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_splits_the_custom_verb_and_decodes_segments() -> GcpResult<()> {
        let p = Path::parse("/v1/projects/p/serviceAccounts/a%40p.iam.gserviceaccount.com")?;
        assert_eq!(
            p.strs(),
            ["v1", "projects", "p", "serviceAccounts", "a@p.iam.gserviceaccount.com"]
        );
        assert_eq!(p.verb, None);
        let p = Path::parse("/v3/projects/p:setIamPolicy")?;
        assert_eq!(p.strs(), ["v3", "projects", "p"]);
        assert_eq!(p.verb.as_deref(), Some("setIamPolicy"));
        assert!(Path::parse("/v2/projects/%zz").is_err());
        Ok(())
    }

    #[test]
    fn empty_values_are_unset_and_unknown_names_are_refused() -> GcpResult<()> {
        let q = Query::parse("pageSize=0&pageToken=&filter=&%24alt=json%3Benum-encoding%3Dint")?;
        q.check(&["pageSize", "pageToken", "filter"])?;
        assert_eq!(q.get("pageToken"), None);
        assert_eq!(q.page_size(20, 100)?, 20);
        let e = Query::parse("pageSize=1&bogus=2")?.check(&["pageSize"]);
        assert!(e.is_err_and(|e| e.message.contains("Unknown name \"bogus\"")));
        assert!(Query::parse("pageSize=1&pageSize=2")?.check(&["pageSize"]).is_err());
        assert!(Query::parse("pageSize=x")?.page_size(20, 100).is_err());
        assert!(Query::parse("pageSize=-1")?.page_size(20, 100).is_err());
        assert_eq!(Query::parse("pageSize=5000")?.page_size(20, 1000)?, 1000);
        assert!(Query::parse("$alt=proto")?.check(&[]).is_err());
        let q = Query::parse("updateMask=serviceConfig.ingressSettings%2Clabels")?;
        assert_eq!(q.get("updateMask"), Some("serviceConfig.ingressSettings,labels"));
        Ok(())
    }

    #[test]
    fn page_tokens_are_bound_to_their_listing() -> GcpResult<()> {
        let items: Vec<u32> = (0..5).collect();
        let (page, next) = paginate(&items, 0, 2, "projects/p");
        assert_eq!(page, [0, 1]);
        let off = page_offset(next.as_deref(), "projects/p")?;
        let (page, next) = paginate(&items, off, 2, "projects/p");
        assert_eq!(page, [2, 3]);
        assert!(page_offset(next.as_deref(), "projects/other").is_err());
        let (page, next) = paginate(&items, page_offset(next.as_deref(), "projects/p")?, 2, "projects/p");
        assert_eq!((page, next), (vec![4], None));
        assert!(page_offset(Some("not-a-token"), "projects/p").is_err());
        Ok(())
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_735_689_599, 0), "2024-12-31T23:59:59.000000000Z");
        assert!(is_rfc3339(&now_rfc3339()));
        assert!(is_rfc3339("2024-01-02T03:04:05+01:00"));
        assert!(!is_rfc3339("2024-01-02 03:04:05Z"));
        assert!(!is_rfc3339("yesterday"));
    }
}
