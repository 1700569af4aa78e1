//! Pub/Sub v1 pull subscriptions (`pubsub.projects.subscriptions.{pull,
//! acknowledge,modifyAckDeadline}`): messages tests publish straight into a
//! subscription, leased to a puller for an ack deadline, redelivered when the
//! deadline passes unacknowledged.
//!
//! Time is passed in (`now`) so the deadline rules can be checked without
//! waiting; the HTTP side (server.rs) holds an empty pull until a message
//! arrives or a lease runs out.

use super::errors::{GcpError, GcpResult};
use super::policy::parse_json;
use super::request::{Query, now_rfc3339};
use super::schema::{self, Kind, Msg, OutputOnly, f};
use super::world::State;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// `Subscription.ackDeadlineSeconds` when a subscription does not set it.
pub(crate) const DEFAULT_ACK_DEADLINE_SECS: u32 = 10;
/// The most messages one pull answers; Google may return fewer than asked.
const MAX_PULL: usize = 1000;
/// ModifyAckDeadline accepts 0 to 600 seconds per request.
const MAX_MODIFY_DEADLINE_SECS: i64 = 600;

static PULL_REQUEST: Msg = Msg {
    name: "google.pubsub.v1.PullRequest",
    fields: &[f("returnImmediately", Kind::Bool), f("maxMessages", Kind::Int32)],
};
static ACKNOWLEDGE_REQUEST: Msg = Msg {
    name: "google.pubsub.v1.AcknowledgeRequest",
    fields: &[f("ackIds", Kind::Strs)],
};
static MODIFY_ACK_DEADLINE_REQUEST: Msg = Msg {
    name: "google.pubsub.v1.ModifyAckDeadlineRequest",
    fields: &[f("ackIds", Kind::Strs), f("ackDeadlineSeconds", Kind::Int32)],
};

/// Every subscription, and what wakes pulls that are waiting for a message.
pub(crate) struct PubSub {
    /// Keyed by `projects/{project id}/subscriptions/{name}`.
    pub subscriptions: BTreeMap<String, Subscription>,
    /// How long a pull that finds nothing waits for a message.
    pub hold: Duration,
    /// Woken on every publish and nack, so waiting pulls look again.
    pub notify: Arc<Notify>,
    next_message_id: u64,
    next_lease: u64,
}

impl Default for PubSub {
    fn default() -> Self {
        PubSub {
            subscriptions: BTreeMap::new(),
            hold: Duration::from_secs(1),
            notify: Arc::new(Notify::new()),
            // Message ids are decimal strings of this size at Google.
            next_message_id: 1_000_000_000_000_000 + fastrand::u64(..1_000_000_000),
            next_lease: 1,
        }
    }
}

pub(crate) struct Subscription {
    pub ack_deadline: Duration,
    /// Set when the subscription has a dead-letter policy: only then does
    /// Google report `deliveryAttempt`, and it stops delivering after this
    /// many attempts (the message goes to the dead-letter topic).
    pub max_delivery_attempts: Option<u32>,
    /// Messages not yet acknowledged, oldest first.
    pub messages: Vec<Message>,
    /// Messages moved out after `max_delivery_attempts`.
    pub dead_lettered: usize,
}

pub(crate) struct Message {
    id: String,
    data: Vec<u8>,
    attributes: BTreeMap<String, String>,
    publish_time: String,
    /// Deliveries so far: 1 + nacks + deadlines missed, once delivered.
    attempts: u32,
    /// The outstanding delivery, while its deadline has not passed.
    lease: Option<Lease>,
}

struct Lease {
    ack_id: String,
    deadline: Instant,
}

impl Message {
    /// Whether a pull may hand it out now (never leased, nacked, or its
    /// lease ran out).
    fn available(&self, now: Instant) -> bool {
        self.lease.as_ref().is_none_or(|l| l.deadline <= now)
    }

    /// Whether `ack_id` names its current delivery and that has not expired:
    /// an ack id of an expired delivery no longer refers to anything.
    fn holds(&self, ack_id: &str, now: Instant) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|l| l.ack_id == ack_id && l.deadline > now)
    }

    fn to_json(&self) -> Value {
        let mut m = json!({
            "data": STANDARD.encode(&self.data),
            "messageId": self.id,
            "publishTime": self.publish_time,
        });
        if !self.attributes.is_empty() {
            m["attributes"] = json!(self.attributes);
        }
        m
    }
}

/// Subscription ids: 3–255 characters, a letter first, then letters, digits
/// and `-_.~+%`, not starting with `goog`.
pub(crate) fn check_subscription_id(id: &str) -> GcpResult<()> {
    let ok = (3..=255).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && !id.to_ascii_lowercase().starts_with("goog")
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c));
    if ok {
        Ok(())
    } else {
        Err(GcpError::invalid(format!("Invalid resource name given (name={id}).")))
    }
}

/// The ack deadline a subscription may be created with: 10 to 600 seconds.
pub(crate) fn check_ack_deadline(secs: u32) -> GcpResult<()> {
    if (10..=600).contains(&secs) {
        Ok(())
    } else {
        Err(GcpError::invalid(format!(
            "Invalid ack deadline given: {secs}. The ack deadline must be between 10 and 600 seconds."
        )))
    }
}

/// Dead-letter policies allow 5 to 100 delivery attempts.
pub(crate) fn check_max_delivery_attempts(n: u32) -> GcpResult<()> {
    if (5..=100).contains(&n) {
        Ok(())
    } else {
        Err(GcpError::invalid(format!(
            "Invalid max_delivery_attempts: {n}. It must be between 5 and 100."
        )))
    }
}

impl PubSub {
    pub fn add(&mut self, key: String, ack_deadline_secs: u32, max_delivery_attempts: Option<u32>) -> GcpResult<()> {
        check_ack_deadline(ack_deadline_secs)?;
        if let Some(n) = max_delivery_attempts {
            check_max_delivery_attempts(n)?;
        }
        if self.subscriptions.contains_key(&key) {
            return Err(GcpError::new(
                super::errors::Code::AlreadyExists,
                format!("Resource already exists in the project (resource={key})."),
            ));
        }
        self.subscriptions.insert(
            key,
            Subscription {
                ack_deadline: Duration::from_secs(u64::from(ack_deadline_secs)),
                max_delivery_attempts,
                messages: Vec::new(),
                dead_lettered: 0,
            },
        );
        Ok(())
    }

    /// Adds a message to a subscription, as if published to its topic;
    /// wakes waiting pulls. Returns the message id.
    pub fn publish(&mut self, key: &str, data: &[u8], attributes: BTreeMap<String, String>) -> GcpResult<String> {
        let id = self.next_message_id.to_string();
        let sub = self.subscriptions.get_mut(key).ok_or_else(|| not_found(key))?;
        self.next_message_id += 1;
        sub.messages.push(Message {
            id: id.clone(),
            data: data.to_vec(),
            attributes,
            publish_time: now_rfc3339(),
            attempts: 0,
            lease: None,
        });
        self.notify.notify_waiters();
        Ok(id)
    }

    /// The earliest moment a leased message becomes deliverable again: a
    /// waiting pull must look again then even if nothing is published.
    pub fn next_expiry(&self, key: &str) -> Option<Instant> {
        self.subscriptions
            .get(key)?
            .messages
            .iter()
            .filter_map(|m| m.lease.as_ref().map(|l| l.deadline))
            .min()
    }

    /// Leases up to `max` available messages, oldest first.
    pub fn pull(&mut self, key: &str, max: usize, now: Instant) -> GcpResult<Vec<Value>> {
        let sub = self.subscriptions.get_mut(key).ok_or_else(|| not_found(key))?;
        dead_letter(sub, now);
        let deadline = now + sub.ack_deadline;
        let mut out = Vec::new();
        for m in sub.messages.iter_mut().filter(|m| m.available(now)).take(max) {
            m.attempts += 1;
            let ack_id = ack_id(key, &m.id, self.next_lease);
            self.next_lease += 1;
            m.lease = Some(Lease {
                ack_id: ack_id.clone(),
                deadline,
            });
            let mut received = json!({"ackId": ack_id, "message": m.to_json()});
            if sub.max_delivery_attempts.is_some() {
                received["deliveryAttempt"] = json!(m.attempts);
            }
            out.push(received);
        }
        Ok(out)
    }

    /// Removes the messages whose ack id is current. Ack ids of expired or
    /// already acknowledged deliveries are accepted and change nothing.
    pub fn acknowledge(&mut self, key: &str, ack_ids: &[String], now: Instant) -> GcpResult<()> {
        let sub = self.subscriptions.get_mut(key).ok_or_else(|| not_found(key))?;
        check_ack_ids(key, ack_ids)?;
        sub.messages.retain(|m| !ack_ids.iter().any(|a| m.holds(a, now)));
        Ok(())
    }

    /// Moves the deadline of current deliveries to `now + secs`; 0 hands the
    /// messages back at once (a nack). Expired ack ids change nothing.
    pub fn modify_deadline(&mut self, key: &str, ack_ids: &[String], secs: u32, now: Instant) -> GcpResult<()> {
        let sub = self.subscriptions.get_mut(key).ok_or_else(|| not_found(key))?;
        check_ack_ids(key, ack_ids)?;
        let deadline = now + Duration::from_secs(u64::from(secs));
        for m in sub.messages.iter_mut() {
            set_deadline(m, ack_ids, deadline, now);
        }
        if secs == 0 {
            self.notify.notify_waiters();
        }
        Ok(())
    }

    /// Messages published and not yet acknowledged (leased ones included).
    pub fn unacknowledged(&self, key: &str) -> Option<usize> {
        Some(self.subscriptions.get(key)?.messages.len())
    }
}

/// Gives `m` a new deadline when one of `ack_ids` names its live delivery.
fn set_deadline(m: &mut Message, ack_ids: &[String], deadline: Instant, now: Instant) {
    if ack_ids.iter().any(|a| m.holds(a, now))
        && let Some(lease) = m.lease.as_mut()
    {
        lease.deadline = deadline;
    }
}

/// With a dead-letter policy, a message whose attempts are used up and whose
/// last delivery expired leaves the subscription instead of being redelivered.
fn dead_letter(sub: &mut Subscription, now: Instant) {
    let Some(max) = sub.max_delivery_attempts else {
        return;
    };
    let before = sub.messages.len();
    sub.messages.retain(|m| !(m.attempts >= max && m.available(now)));
    sub.dead_lettered += before - sub.messages.len();
}

/// Ack ids are opaque to callers; this one names the subscription, the
/// message and the delivery, so a malformed one can be told apart from one
/// that merely expired.
fn ack_id(key: &str, message_id: &str, lease: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{key}\n{message_id}\n{lease}"))
}

/// Google refuses ack ids it could not have issued for this subscription
/// (INVALID_ARGUMENT), and an empty list, since `ackIds` is required.
fn check_ack_ids(key: &str, ack_ids: &[String]) -> GcpResult<()> {
    if ack_ids.is_empty() {
        return Err(GcpError::invalid("ack_ids must not be empty."));
    }
    for a in ack_ids {
        let decoded = URL_SAFE_NO_PAD
            .decode(a)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok());
        let ours = decoded.is_some_and(|d| d.split('\n').next() == Some(key) && d.split('\n').count() == 3);
        if !ours {
            return Err(GcpError::invalid(format!(
                "You have passed an invalid ack ID to the service (ack_id={a})."
            )));
        }
    }
    Ok(())
}

fn not_found(key: &str) -> GcpError {
    GcpError::not_found(format!("Resource not found (resource={}).", short_name(key)))
}

fn short_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

fn read_body(msg: &'static Msg, body: &[u8], at: &str) -> GcpResult<Map<String, Value>> {
    schema::normalize(msg, &parse_json(body)?, at, OutputOnly::Drop)
}

fn ack_ids_of(req: &Map<String, Value>) -> Vec<String> {
    req.get("ackIds")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// A pull request's parameters: how many messages, and whether the caller
/// may be held until one arrives.
pub(crate) struct PullRequest {
    pub key: String,
    pub max: usize,
    pub may_wait: bool,
}

/// Reads and checks `POST v1/projects/{p}/subscriptions/{s}:pull`.
pub(crate) fn parse_pull(
    state: &State,
    query: &Query,
    project: &str,
    subscription: &str,
    body: &[u8],
) -> GcpResult<PullRequest> {
    query.check(&[])?;
    let req = read_body(&PULL_REQUEST, body, "pull_request")?;
    let max = req.get("maxMessages").and_then(Value::as_i64).unwrap_or(0);
    if max <= 0 {
        return Err(GcpError::invalid("max_messages must be greater than 0."));
    }
    let key = state.subscription_key(project, subscription)?;
    let may_wait = req.get("returnImmediately") != Some(&Value::Bool(true));
    Ok(PullRequest {
        key,
        max: usize::try_from(max).unwrap_or(MAX_PULL).min(MAX_PULL),
        may_wait,
    })
}

/// One attempt at a pull: `{"receivedMessages": [...]}`, or `{}` when
/// nothing is available (proto3 JSON leaves out the empty list).
pub(crate) fn pull_once(state: &mut State, req: &PullRequest, now: Instant) -> GcpResult<Value> {
    let received = state.pubsub.pull(&req.key, req.max, now)?;
    Ok(if received.is_empty() {
        json!({})
    } else {
        json!({"receivedMessages": received})
    })
}

/// POST v1/projects/{p}/subscriptions/{s}:acknowledge
pub(crate) fn handle_acknowledge(
    state: &mut State,
    query: &Query,
    project: &str,
    subscription: &str,
    body: &[u8],
) -> GcpResult<Value> {
    query.check(&[])?;
    let req = read_body(&ACKNOWLEDGE_REQUEST, body, "acknowledge_request")?;
    let key = state.subscription_key(project, subscription)?;
    state.pubsub.acknowledge(&key, &ack_ids_of(&req), Instant::now())?;
    Ok(json!({}))
}

/// POST v1/projects/{p}/subscriptions/{s}:modifyAckDeadline
pub(crate) fn handle_modify_ack_deadline(
    state: &mut State,
    query: &Query,
    project: &str,
    subscription: &str,
    body: &[u8],
) -> GcpResult<Value> {
    query.check(&[])?;
    let req = read_body(&MODIFY_ACK_DEADLINE_REQUEST, body, "modify_ack_deadline_request")?;
    // proto3: an absent ackDeadlineSeconds is 0, a nack.
    let secs = req.get("ackDeadlineSeconds").and_then(Value::as_i64).unwrap_or(0);
    if !(0..=MAX_MODIFY_DEADLINE_SECS).contains(&secs) {
        return Err(GcpError::invalid(format!(
            "Invalid ack deadline given: {secs}. The minimum deadline is 0 seconds and the maximum is 600 seconds."
        )));
    }
    let key = state.subscription_key(project, subscription)?;
    let secs = u32::try_from(secs).unwrap_or(0);
    state
        .pubsub
        .modify_deadline(&key, &ack_ids_of(&req), secs, Instant::now())?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "projects/p/subscriptions/s";

    fn pubsub(max_attempts: Option<u32>) -> GcpResult<PubSub> {
        let mut ps = PubSub::default();
        ps.add(SUB.into(), DEFAULT_ACK_DEADLINE_SECS, max_attempts)?;
        Ok(ps)
    }

    fn ack_ids(received: &[Value]) -> Vec<String> {
        received
            .iter()
            .filter_map(|r| r["ackId"].as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn a_leased_message_comes_back_after_the_subscription_deadline() -> GcpResult<()> {
        let mut ps = pubsub(None)?;
        let t0 = Instant::now();
        ps.publish(SUB, b"x", BTreeMap::new())?;
        let first = ps.pull(SUB, 10, t0)?;
        assert_eq!(first.len(), 1);
        assert!(ps.pull(SUB, 10, t0 + Duration::from_secs(9))?.is_empty(), "leased");
        let again = ps.pull(SUB, 10, t0 + Duration::from_secs(10))?;
        assert_eq!(again.len(), 1, "redelivered once the 10 s deadline passed");
        assert_ne!(again[0]["ackId"], first[0]["ackId"]);
        assert!(first[0].get("deliveryAttempt").is_none(), "no dead-letter policy");
        // The old ack id expired: acknowledging it is accepted and does nothing.
        ps.acknowledge(SUB, &ack_ids(&first), t0 + Duration::from_secs(11))?;
        assert_eq!(ps.unacknowledged(SUB), Some(1));
        ps.acknowledge(SUB, &ack_ids(&again), t0 + Duration::from_secs(11))?;
        assert_eq!(ps.unacknowledged(SUB), Some(0));
        Ok(())
    }

    #[test]
    fn delivery_attempts_count_and_end_in_the_dead_letter_topic() -> GcpResult<()> {
        let mut ps = pubsub(Some(5))?;
        let mut t = Instant::now();
        ps.publish(SUB, b"x", BTreeMap::new())?;
        for attempt in 1..=5 {
            let got = ps.pull(SUB, 1, t)?;
            assert_eq!(got[0]["deliveryAttempt"], attempt);
            ps.modify_deadline(SUB, &ack_ids(&got), 0, t)?;
            t += Duration::from_millis(1);
        }
        assert!(ps.pull(SUB, 1, t)?.is_empty());
        assert_eq!(ps.subscriptions[SUB].dead_lettered, 1);
        Ok(())
    }

    #[test]
    fn malformed_ack_ids_and_bad_seeds_are_refused() -> GcpResult<()> {
        let mut ps = pubsub(None)?;
        assert!(ps.acknowledge(SUB, &["nonsense".into()], Instant::now()).is_err());
        assert!(ps.acknowledge(SUB, &[], Instant::now()).is_err());
        assert!(ps.add("projects/p/subscriptions/t".into(), 9, None).is_err());
        assert!(ps.add("projects/p/subscriptions/t".into(), 10, Some(4)).is_err());
        assert!(ps.add(SUB.into(), 10, None).is_err(), "exists");
        assert!(check_subscription_id("goog-x").is_err());
        assert!(check_subscription_id("1abc").is_err());
        assert!(check_subscription_id("events-a.b~c").is_ok());
        Ok(())
    }
}
