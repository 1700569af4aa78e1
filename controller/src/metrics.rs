//! Prometheus metrics. Every cloud call is counted by cloud, operation and
//! outcome; the CLI reads the same counters to report how many writes it made.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloudRequestLabels {
    pub cloud: &'static str,
    pub op: String,
    pub outcome: Outcome,
}

/// How one cloud call (one attempt, retries count again) ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    ok,
    throttled,
    client_error,
    server_error,
    transport_error,
}

impl Outcome {
    /// A call the cloud refused (a 4xx other than throttling). A read
    /// refused as "not found" has answered: the thing is absent (a function
    /// without a resource policy or URL, a role already gone), which is the
    /// normal answer for many reads, so it is `ok`; alerts on
    /// `client_error` then see only real refusals. A write's not-found stays
    /// a client error.
    pub fn refused(op: &str, not_found: bool) -> Outcome {
        if not_found && !is_write(op) {
            Outcome::ok
        } else {
            Outcome::client_error
        }
    }
}

/// Why a cloud call was tried again.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RetryCause {
    /// The cloud refused for rate (429, RESOURCE_EXHAUSTED, Throttling).
    throttled,
    /// No answer, a transport failure or a server error.
    unavailable,
    /// Another change was in flight (409, ABORTED, ResourceConflict).
    conflict,
    /// A new identity was not visible yet.
    propagation,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabels {
    pub cloud: &'static str,
    pub cause: RetryCause,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabels {
    pub category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControlLabels {
    pub control: &'static str,
}

/// What became of one change event.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum EventOutcome {
    /// Read from the feed.
    received,
    /// Re-checked at least one posture.
    mapped,
    /// For no governed function, of a kind not watched, or unreadable.
    dropped,
    /// Caused by zerofn's own writes.
    own,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub cloud: &'static str,
    pub outcome: EventOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloudLabels {
    pub cloud: &'static str,
}

/// Whether an operation changes the cloud. Read operations of every cloud
/// we call start with one of these verbs (AWS) or use GET (REST clouds,
/// whose `op` is `GET ...`).
pub fn is_write(op: &str) -> bool {
    !(op.starts_with("Get") || op.starts_with("List") || op.starts_with("GET ") || op.starts_with("Describe"))
}

pub struct Metrics {
    registry: Registry,
    cloud_requests: Family<CloudRequestLabels, Counter>,
    throttles: Family<CloudLabels, Counter>,
    retries: Family<RetryLabels, Counter>,
    writes: AtomicU64,
    reads: AtomicU64,
    /// Attempts by `cloud op`, for reports (the Family cannot be listed).
    by_op: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    pub reconciles: Family<ResultLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub errors: Family<CategoryLabels, Counter>,
    pub compliant: Family<ControlLabels, Gauge>,
    pub postures: Gauge,
    /// Findings that appeared where the last status had none like them.
    pub drift_detected: Family<ControlLabels, Counter>,
    /// Change events by cloud and what became of them.
    pub events: Family<EventLabels, Counter>,
    /// Seconds from a change in the cloud to its event's receipt.
    pub event_lag: Histogram,
    /// Failed reads or deletes of an account's change-event feed.
    pub event_feed_errors: Family<CloudLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("writes", &self.writes())
            .field("reads", &self.reads())
            .finish()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("zerofn");
        let cloud_requests = Family::<CloudRequestLabels, Counter>::default();
        registry.register(
            "cloud_requests",
            "Cloud API calls (attempts) by cloud, operation and outcome",
            cloud_requests.clone(),
        );
        let throttles = Family::<CloudLabels, Counter>::default();
        registry.register(
            "cloud_throttles",
            "Cloud calls refused by throttling",
            throttles.clone(),
        );
        let retries = Family::<RetryLabels, Counter>::default();
        registry.register(
            "cloud_retries",
            "Cloud calls tried again, by cloud and cause",
            retries.clone(),
        );
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register("reconciles", "Reconciliations by result", reconciles.clone());
        let reconcile_duration = Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]);
        registry.register(
            "reconcile_duration_seconds",
            "Time to observe, plan, enforce and re-observe one posture",
            reconcile_duration.clone(),
        );
        let errors = Family::<CategoryLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciliations by error category",
            errors.clone(),
        );
        let compliant = Family::<ControlLabels, Gauge>::default();
        registry.register(
            "compliant_postures",
            "Postures whose declared control is compliant, by control",
            compliant.clone(),
        );
        let postures = Gauge::default();
        registry.register("postures", "FunctionPostures known to the controller", postures.clone());
        let drift_detected = Family::<ControlLabels, Counter>::default();
        registry.register(
            "drift_detected",
            "Findings observed that the posture's last status did not have, by control",
            drift_detected.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Cloud change events by cloud and outcome (received, mapped, dropped, own)",
            events.clone(),
        );
        let event_lag = Histogram::new([1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0]);
        registry.register(
            "event_lag_seconds",
            "Time from a change in the cloud to zerofn receiving its event",
            event_lag.clone(),
        );
        let event_feed_errors = Family::<CloudLabels, Counter>::default();
        registry.register(
            "event_feed_errors",
            "Failed reads or deletes of an account's change-event feed",
            event_feed_errors.clone(),
        );
        Metrics {
            events,
            event_lag,
            event_feed_errors,
            registry,
            cloud_requests,
            throttles,
            retries,
            writes: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            by_op: Default::default(),
            reconciles,
            reconcile_duration,
            errors,
            compliant,
            postures,
            drift_detected,
        }
    }
}

impl Metrics {
    pub fn cloud_call(&self, cloud: &'static str, op: &str, outcome: Outcome) {
        self.cloud_requests
            .get_or_create(&CloudRequestLabels {
                cloud,
                op: op.to_string(),
                outcome,
            })
            .inc();
        if outcome == Outcome::throttled {
            self.throttles.get_or_create(&CloudLabels { cloud }).inc();
        }
        if is_write(op) {
            self.writes.fetch_add(1, Ordering::Relaxed);
        } else {
            self.reads.fetch_add(1, Ordering::Relaxed);
        }
        *self
            .by_op
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(format!("{cloud} {op}"))
            .or_default() += 1;
    }

    /// Calls made so far, by `cloud op`.
    pub fn calls_by_op(&self) -> std::collections::BTreeMap<String, u64> {
        self.by_op.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Write calls made so far (every attempt, whatever its outcome).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub fn throttled(&self, cloud: &'static str) -> u64 {
        self.throttles.get_or_create(&CloudLabels { cloud }).get()
    }

    /// A call about to be tried again.
    pub fn retried(&self, cloud: &'static str, cause: RetryCause) {
        self.retries.get_or_create(&RetryLabels { cloud, cause }).inc();
    }

    pub fn retries(&self, cloud: &'static str, cause: RetryCause) -> u64 {
        self.retries.get_or_create(&RetryLabels { cloud, cause }).get()
    }

    pub fn cloud_requests(&self, cloud: &'static str, op: &str, outcome: Outcome) -> u64 {
        self.cloud_requests
            .get_or_create(&CloudRequestLabels {
                cloud,
                op: op.to_string(),
                outcome,
            })
            .get()
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_answered_not_found_is_ok_and_a_write_is_not() {
        assert_eq!(Outcome::refused("GetPolicy", true), Outcome::ok);
        assert_eq!(Outcome::refused("GET authsettingsV2", true), Outcome::ok);
        assert_eq!(Outcome::refused("GetPolicy", false), Outcome::client_error);
        assert_eq!(Outcome::refused("DeleteFunctionUrlConfig", true), Outcome::client_error);
    }

    #[test]
    fn reads_and_writes_are_told_apart() {
        let m = Metrics::default();
        m.cloud_call("aws", "ListFunctions", Outcome::ok);
        m.cloud_call("aws", "GetPolicy", Outcome::client_error);
        m.cloud_call("aws", "UpdateFunctionConfiguration", Outcome::ok);
        m.cloud_call("gcp", "PATCH functions", Outcome::throttled);
        m.cloud_call("gcp", "GET functions", Outcome::ok);
        assert_eq!((m.reads(), m.writes()), (3, 2));
        assert_eq!(m.throttled("gcp"), 1);
        assert_eq!(m.calls_by_op().get("aws ListFunctions"), Some(&1));
        let text = m.encode();
        assert!(
            text.contains(r#"zerofn_cloud_requests_total{cloud="aws",op="ListFunctions",outcome="ok"} 1"#),
            "{text}"
        );
    }
}
