//! Azure Queue Storage (REST), served path-style as the Azurite emulator
//! serves it: `{url}/{account}/{queue}/messages[/{messageid}]`. Get Messages,
//! Put Message and Delete Message, with bearer tokens the stand-in's token
//! endpoint issued for the storage audience, answered in the Queue service's
//! XML and error shapes.
//!
//! Time is passed in (`now`) so visibility and expiry can be checked without
//! waiting.

use super::errors::ArmError;
use super::ids::{eq_ci, guid};
use super::token::Audience;
use super::world::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;

/// The longest visibility timeout, and Put Message's default time to live:
/// 7 days, in seconds.
const SEVEN_DAYS: i64 = 604_800;
/// Get Messages' visibility timeout when the request sets none.
const DEFAULT_VISIBILITY: i64 = 30;
/// A message (its XML-escaped text) may be up to 64 KiB.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// One queue's messages, oldest first.
#[derive(Default)]
pub(crate) struct Queue {
    messages: Vec<QueueMessage>,
}

struct QueueMessage {
    id: String,
    text: String,
    inserted: Timestamp,
    /// None: never expires (`messagettl=-1`).
    expires: Option<Timestamp>,
    next_visible: Timestamp,
    dequeue_count: u32,
    /// The receipt Delete Message must present: the one from the latest Get
    /// Messages, or from Put Message while it was never dequeued.
    pop_receipt: String,
}

/// A refusal as the Queue service words it: status, error code, message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StorageError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// Extra elements of the error body, e.g. `("HeaderName", "x-ms-version")`.
    pub detail: Vec<(&'static str, String)>,
}

type StorageResult<T> = Result<T, StorageError>;

impl StorageError {
    fn new(status: u16, code: &str, message: impl Into<String>) -> StorageError {
        StorageError {
            status,
            code: code.to_string(),
            message: message.into(),
            detail: Vec::new(),
        }
    }

    fn with(mut self, element: &'static str, value: impl Into<String>) -> StorageError {
        self.detail.push((element, value.into()));
        self
    }

    fn queue_not_found() -> StorageError {
        StorageError::new(404, "QueueNotFound", "The specified queue does not exist.")
    }

    fn message_not_found() -> StorageError {
        StorageError::new(404, "MessageNotFound", "The specified message does not exist.")
    }

    fn out_of_range(name: &str, value: &str, min: i64, max: i64) -> StorageError {
        StorageError::new(
            400,
            "OutOfRangeQueryParameterValue",
            "One of the query parameters specified in the request URI is outside the permissible range.",
        )
        .with("QueryParameterName", name)
        .with("QueryParameterValue", value)
        .with("MinimumAllowed", min.to_string())
        .with("MaximumAllowed", max.to_string())
    }

    /// An armed fault, answered in the Queue service's shape.
    pub fn from_fault(e: &ArmError) -> StorageError {
        StorageError::new(e.status, &e.code, e.message.clone())
    }

    /// `<Error><Code>..</Code><Message>..</Message>[detail]</Error>`, the
    /// message ending with the request id and time as Azure's do.
    fn xml(&self, request_id: &str, now: Timestamp) -> String {
        let detail: String = self
            .detail
            .iter()
            .map(|(el, v)| format!("<{el}>{}</{el}>", escape(v)))
            .collect();
        format!(
            "{XML_DECL}<Error><Code>{}</Code><Message>{}\nRequestId:{request_id}\nTime:{}</Message>{detail}</Error>",
            escape(&self.code),
            escape(&self.message),
            now.strftime("%Y-%m-%dT%H:%M:%S.%7fZ"),
        )
    }
}

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";

/// Storage account names: 3–24 lowercase letters and digits.
pub(crate) fn check_account(name: &str) -> Result<(), String> {
    let ok = (3..=24).contains(&name.len()) && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!("invalid storage account name {name:?}"))
    }
}

/// Queue names: 3–63 lowercase letters, digits and single hyphens, starting
/// and ending with a letter or digit.
pub(crate) fn check_queue(name: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!("invalid queue name {name:?}"))
    }
}

/// Opaque to callers, fresh on every dequeue.
fn pop_receipt() -> String {
    let bytes: Vec<u8> = (0..16).map(|_| fastrand::u8(..)).collect();
    STANDARD.encode(bytes)
}

impl Queue {
    /// Drops messages whose time to live has run out.
    fn purge(&mut self, now: Timestamp) {
        self.messages.retain(|m| m.expires.is_none_or(|e| e > now));
    }

    /// Messages not expired, invisible ones included.
    pub fn len(&mut self, now: Timestamp) -> usize {
        self.purge(now);
        self.messages.len()
    }

    /// A message put the way Put Message puts one by default; its id.
    pub fn put_returning_id(&mut self, text: &str, now: Timestamp) -> String {
        self.put(text, 0, Some(SEVEN_DAYS), now);
        self.messages.last().map(|m| m.id.clone()).unwrap_or_default()
    }

    /// Put Message: appends a message, visible after `visibility` seconds,
    /// expiring after `ttl` seconds (None: never). The answer's body.
    pub fn put(&mut self, text: &str, visibility: i64, ttl: Option<i64>, now: Timestamp) -> String {
        self.purge(now);
        let m = QueueMessage {
            id: guid(),
            text: text.to_string(),
            inserted: now,
            // A time to live beyond what a timestamp can hold never ends either.
            expires: ttl.and_then(|t| now.checked_add(SignedDuration::from_secs(t)).ok()),
            next_visible: now + SignedDuration::from_secs(visibility),
            dequeue_count: 0,
            pop_receipt: pop_receipt(),
        };
        let xml = format!(
            "{XML_DECL}<QueueMessagesList><QueueMessage><MessageId>{}</MessageId><InsertionTime>{}</InsertionTime>\
             <ExpirationTime>{}</ExpirationTime><PopReceipt>{}</PopReceipt><TimeNextVisible>{}</TimeNextVisible>\
             </QueueMessage></QueueMessagesList>",
            m.id,
            rfc1123(m.inserted),
            expiration(m.expires),
            escape(&m.pop_receipt),
            rfc1123(m.next_visible)
        );
        self.messages.push(m);
        xml
    }

    /// Get Messages: up to `count` visible messages, oldest first, each made
    /// invisible for `visibility` seconds with a new pop receipt.
    pub fn get(&mut self, count: usize, visibility: i64, now: Timestamp) -> String {
        self.purge(now);
        let mut xml = format!("{XML_DECL}<QueueMessagesList>");
        for m in self.messages.iter_mut().filter(|m| m.next_visible <= now).take(count) {
            m.dequeue_count += 1;
            m.pop_receipt = pop_receipt();
            m.next_visible = now + SignedDuration::from_secs(visibility);
            xml.push_str(&format!(
                "<QueueMessage><MessageId>{}</MessageId><InsertionTime>{}</InsertionTime>\
                 <ExpirationTime>{}</ExpirationTime><PopReceipt>{}</PopReceipt>\
                 <TimeNextVisible>{}</TimeNextVisible><DequeueCount>{}</DequeueCount>\
                 <MessageText>{}</MessageText></QueueMessage>",
                m.id,
                rfc1123(m.inserted),
                expiration(m.expires),
                escape(&m.pop_receipt),
                rfc1123(m.next_visible),
                m.dequeue_count,
                escape(&m.text)
            ));
        }
        xml.push_str("</QueueMessagesList>");
        xml
    }

    /// Delete Message: only with the message's current pop receipt. A
    /// receipt a later dequeue replaced is 400 PopReceiptMismatch (the
    /// Queue service error table; the emulator answers the same); a message
    /// that is gone (deleted, expired, never there) is 404 MessageNotFound.
    pub fn delete(&mut self, id: &str, receipt: &str, now: Timestamp) -> StorageResult<()> {
        self.purge(now);
        let at = self
            .messages
            .iter()
            .position(|m| m.id == id)
            .ok_or_else(StorageError::message_not_found)?;
        if self.messages[at].pop_receipt != receipt {
            return Err(StorageError::new(
                400,
                "PopReceiptMismatch",
                "The specified pop receipt did not match the pop receipt for a dequeued message.",
            ));
        }
        self.messages.remove(at);
        Ok(())
    }
}

/// RFC 1123 as the Queue service writes times: `Fri, 04 Dec 2026 21:56:17 GMT`.
fn rfc1123(t: Timestamp) -> String {
    jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&t)
        .unwrap_or_default()
}

/// A message that never expires shows the largest time Azure can write.
fn expiration(t: Option<Timestamp>) -> String {
    t.map(rfc1123)
        .unwrap_or_else(|| "Fri, 31 Dec 9999 23:59:59 GMT".to_string())
}

/// Escapes text for XML element content.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes XML escaping: the five named entities and character references.
/// None on a malformed or unknown entity.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..].find(';')? + amp;
        let entity = &rest[amp + 1..semi];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let n = match entity.strip_prefix("#x").or_else(|| entity.strip_prefix("#X")) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => entity.strip_prefix('#')?.parse().ok()?,
                };
                char::from_u32(n)?
            }
        };
        out.push(c);
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The text of `<QueueMessage><MessageText>…</MessageText></QueueMessage>`
/// (an XML declaration and whitespace around the elements allowed), or
/// None when the body is not that document.
fn message_text(body: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(body).ok()?.trim();
    let s = match s.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>")?.1.trim_start(),
        None => s,
    };
    let inner = s
        .strip_prefix("<QueueMessage>")?
        .strip_suffix("</QueueMessage>")?
        .trim();
    if inner == "<MessageText/>" || inner == "<MessageText />" {
        return Some(String::new());
    }
    let text = inner.strip_prefix("<MessageText>")?.strip_suffix("</MessageText>")?;
    if text.contains('<') {
        return None;
    }
    unescape(text)
}

/// An integer query parameter within `min..=max`, `default` when absent.
fn int_param(query: &BTreeMap<String, String>, name: &str, default: i64, min: i64, max: i64) -> StorageResult<i64> {
    let Some(raw) = query.get(name) else {
        return Ok(default);
    };
    let n: i64 = raw.parse().map_err(|_| {
        StorageError::new(
            400,
            "InvalidQueryParameterValue",
            "Value for one of the query parameters specified in the request URI is invalid.",
        )
        .with("QueryParameterName", name)
    })?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(StorageError::out_of_range(name, raw, min, max))
    }
}

/// A queue request, already split: account, queue, the message id if any.
pub(crate) struct QueueRequest<'a> {
    pub method: &'a str,
    pub account: &'a str,
    pub queue: &'a str,
    pub message: Option<&'a str>,
    pub query: &'a BTreeMap<String, String>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// `[account, queue, "messages", id?]`: the paths the Queue service owns.
/// No ARM path has `messages` as its third segment.
pub(crate) fn is_queue_path(segs: &[&str]) -> bool {
    matches!(segs, [a, q, "messages"] | [a, q, "messages", _] if !a.is_empty() && !q.is_empty())
}

/// Answers one queue request, checking in order: bearer token for the
/// storage audience, x-ms-version, the queue, then the operation's
/// parameters.
pub(crate) fn handle(state: &mut State, req: &QueueRequest, now: Timestamp) -> Response {
    let version = req.headers.get("x-ms-version").and_then(|v| v.to_str().ok());
    let result = authenticate(state, req.headers)
        .and_then(|()| version.map(|_| ()).ok_or_else(missing_version))
        .and_then(|()| operate(state, req, now));
    respond(result, version, state, now)
}

fn missing_version() -> StorageError {
    StorageError::new(
        400,
        "MissingRequiredHeader",
        "An HTTP header that's mandatory for this request is not specified.",
    )
    .with("HeaderName", "x-ms-version")
}

/// Storage takes Microsoft Entra bearer tokens issued for
/// `https://storage.azure.com`; anything else is refused the way the
/// service refuses it (401 with a WWW-Authenticate challenge).
fn authenticate(state: &State, headers: &HeaderMap) -> StorageResult<()> {
    let Some(value) = headers.get("authorization") else {
        return Err(StorageError::new(
            401,
            "NoAuthenticationInformation",
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        ));
    };
    let value = value.to_str().unwrap_or_default();
    let Some((_, token)) = value.split_once(' ').filter(|(s, _)| eq_ci(s, "Bearer")) else {
        return Err(StorageError::new(
            403,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization header is formed \
             correctly including the signature.",
        )
        .with("AuthenticationErrorDetail", "The stand-in accepts bearer tokens only."));
    };
    let invalid = |detail: &str| {
        StorageError::new(
            401,
            "InvalidAuthenticationInfo",
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        )
        .with("AuthenticationErrorDetail", detail)
    };
    match state.tokens.get(token.trim()) {
        Some(Audience::Storage) => Ok(()),
        Some(_) => Err(invalid("Audience validation failed. Audience did not match.")),
        None => Err(invalid("Issuer validation failed. Issuer did not match.")),
    }
}

fn operate(state: &mut State, req: &QueueRequest, now: Timestamp) -> StorageResult<(u16, Option<String>)> {
    let key = (req.account.to_string(), req.queue.to_string());
    let queue = state.queues.get_mut(&key).ok_or_else(StorageError::queue_not_found)?;
    match (req.method, req.message) {
        ("GET", None) => get_messages(queue, req.query, now).map(|xml| (200, Some(xml))),
        ("POST", None) => put_message(queue, req.query, req.body, now).map(|xml| (201, Some(xml))),
        ("DELETE", Some(id)) => {
            let receipt = req.query.get("popreceipt").ok_or_else(|| {
                StorageError::new(
                    400,
                    "MissingRequiredQueryParameter",
                    "A query parameter that's mandatory for this request is not specified.",
                )
                .with("QueryParameterName", "popreceipt")
            })?;
            queue.delete(id, receipt, now).map(|()| (204, None))
        }
        ("DELETE", None) | ("PUT", Some(_)) => Err(StorageError::new(
            501,
            "NotImplemented",
            "The Azure stand-in does not serve Clear Messages or Update Message; see sim/src/azure/README.md.",
        )),
        _ => Err(StorageError::new(
            405,
            "UnsupportedHttpVerb",
            "The resource doesn't support the specified HTTP verb.",
        )),
    }
}

fn get_messages(queue: &mut Queue, query: &BTreeMap<String, String>, now: Timestamp) -> StorageResult<String> {
    if query.get("peekonly").is_some_and(|v| eq_ci(v, "true")) {
        return Err(StorageError::new(
            501,
            "NotImplemented",
            "The Azure stand-in does not serve Peek Messages; see sim/src/azure/README.md.",
        ));
    }
    let count = int_param(query, "numofmessages", 1, 1, 32)?;
    let visibility = int_param(query, "visibilitytimeout", DEFAULT_VISIBILITY, 1, SEVEN_DAYS)?;
    Ok(queue.get(usize::try_from(count).unwrap_or(1), visibility, now))
}

fn put_message(
    queue: &mut Queue,
    query: &BTreeMap<String, String>,
    body: &[u8],
    now: Timestamp,
) -> StorageResult<String> {
    // Any positive number of seconds, or -1 for never (versions 2017-07-29 on).
    let ttl = int_param(query, "messagettl", SEVEN_DAYS, -1, i64::MAX)?;
    if ttl == 0 {
        return Err(StorageError::out_of_range("messagettl", "0", -1, i64::MAX));
    }
    let ttl = (ttl > 0).then_some(ttl);
    // The visibility timeout must fall before the message expires.
    let max_visibility = ttl.map_or(SEVEN_DAYS, |t| (t - 1).min(SEVEN_DAYS));
    let visibility = int_param(query, "visibilitytimeout", 0, 0, max_visibility)?;
    let text = message_text(body)
        .ok_or_else(|| StorageError::new(400, "InvalidXmlDocument", "XML specified is not syntactically valid."))?;
    if escape(&text).len() > MAX_MESSAGE_BYTES {
        return Err(StorageError::new(
            400,
            "MessageTooLarge",
            "The message exceeds the maximum allowed size.",
        ));
    }
    Ok(queue.put(&text, visibility, ttl, now))
}

/// The answer: XML body or none, and the headers every Queue service
/// response carries; errors also name their code in `x-ms-error-code`.
fn respond(
    result: StorageResult<(u16, Option<String>)>,
    version: Option<&str>,
    state: &State,
    now: Timestamp,
) -> Response {
    let request_id = guid();
    let (status, body, error) = match result {
        Ok((status, body)) => (status, body, None),
        Err(e) => (e.status, Some(e.xml(&request_id, now)), Some(e)),
    };
    let mut response = Response::new(axum::body::Body::from(body.clone().unwrap_or_default()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    if body.is_some() {
        set("content-type", "application/xml");
    }
    set("x-ms-request-id", &request_id);
    set("date", &rfc1123(now));
    if let Some(v) = version {
        set("x-ms-version", v);
    }
    if let Some(e) = &error {
        set("x-ms-error-code", &e.code);
        if e.status == 401 {
            let challenge = format!(
                "Bearer authorization_uri=https://login.microsoftonline.com/{}/oauth2/authorize resource_id=https://storage.azure.com",
                state.tenant
            );
            set("www-authenticate", &challenge);
        }
    }
    response
}

/// An armed fault on a queue path, in the Queue service's error shape.
pub(crate) fn fault_response(e: &ArmError, headers: &HeaderMap, state: &State) -> Response {
    let version = headers.get("x-ms-version").and_then(|v| v.to_str().ok());
    let mut response = respond(Err(StorageError::from_fault(e)), version, state, Timestamp::now());
    if let Some(secs) = e.retry_after_secs {
        response.headers_mut().insert("retry-after", HeaderValue::from(secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
        let open = format!("<{name}>");
        let start = xml.find(&open)? + open.len();
        let end = xml[start..].find(&format!("</{name}>"))? + start;
        Some(&xml[start..end])
    }

    #[test]
    fn a_dequeued_message_comes_back_after_its_visibility_timeout() -> Result<(), String> {
        let mut q = Queue::default();
        let t0 = Timestamp::now();
        q.put("a <b> & c", 0, Some(SEVEN_DAYS), t0);
        let first = q.get(32, 30, t0);
        assert_eq!(field(&first, "DequeueCount"), Some("1"));
        assert_eq!(field(&first, "MessageText"), Some("a &lt;b&gt; &amp; c"));
        assert!(field(&q.get(32, 30, t0 + SignedDuration::from_secs(29)), "MessageId").is_none());
        let second = q.get(32, 30, t0 + SignedDuration::from_secs(30));
        assert_eq!(field(&second, "DequeueCount"), Some("2"));
        let id = field(&second, "MessageId").ok_or("id")?;
        let old = unescape(field(&first, "PopReceipt").ok_or("receipt")?).ok_or("unescape")?;
        let new = unescape(field(&second, "PopReceipt").ok_or("receipt")?).ok_or("unescape")?;
        assert_ne!(old, new);
        let now = t0 + SignedDuration::from_secs(31);
        assert!(q.delete(id, &old, now).is_err_and(|e| e.code == "PopReceiptMismatch"));
        assert_eq!(q.delete(id, &new, now), Ok(()));
        assert_eq!(q.delete(id, &new, now), Err(StorageError::message_not_found()));
        assert_eq!(q.len(now), 0);
        Ok(())
    }

    #[test]
    fn messages_expire_after_their_time_to_live() {
        let mut q = Queue::default();
        let t0 = Timestamp::now();
        q.put("x", 0, Some(5), t0);
        q.put("forever", 0, None, t0);
        let xml = q.get(32, 1, t0);
        assert!(xml.contains("<ExpirationTime>Fri, 31 Dec 9999 23:59:59 GMT</ExpirationTime>"));
        assert_eq!(q.len(t0 + SignedDuration::from_secs(4)), 2);
        assert_eq!(q.len(t0 + SignedDuration::from_secs(5)), 1);
    }

    #[test]
    fn request_bodies_and_names_are_read_strictly() {
        let body = b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<QueueMessage>\n  <MessageText>a &amp; &#x3C;b&#62;</MessageText>\n</QueueMessage>";
        assert_eq!(message_text(body).as_deref(), Some("a & <b>"));
        assert_eq!(
            message_text(b"<QueueMessage><MessageText/></QueueMessage>").as_deref(),
            Some("")
        );
        assert_eq!(message_text(b"<QueueMessage><Text>x</Text></QueueMessage>"), None);
        assert_eq!(
            message_text(b"<QueueMessage><MessageText>&bogus;</MessageText></QueueMessage>"),
            None
        );
        assert_eq!(
            message_text(b"<QueueMessage><MessageText>a<b/></MessageText></QueueMessage>"),
            None
        );
        assert!(check_queue("zerofn-events").is_ok());
        assert!(check_queue("Upper").is_err() && check_queue("a--b").is_err() && check_queue("-ab").is_err());
        assert!(check_account("zerofnstore1").is_ok() && check_account("no-dash").is_err());
        assert!(is_queue_path(&["acct", "q", "messages"]) && is_queue_path(&["acct", "q", "messages", "id"]));
        assert!(!is_queue_path(&["subscriptions", "s", "resourceGroups"]));
        assert!(rfc1123(Timestamp::UNIX_EPOCH).starts_with("Thu, 01 Jan 1970 00:00:00 GMT"));
        let xml = StorageError::queue_not_found().xml("id", Timestamp::UNIX_EPOCH);
        assert!(
            xml.ends_with("RequestId:id\nTime:1970-01-01T00:00:00.0000000Z</Message></Error>"),
            "{xml}"
        );
    }
}
