//! The runtime's state for operators: counters, gauges and a latency histogram per
//! worker, merged across workers and rendered as JSON or Prometheus text.
//!
//! The request path only bumps relaxed atomics that live in this process (one nginx
//! worker): no lock, no allocation. The counters are process-wide rather than part of
//! the worker's runtime, so they survive a runtime restart. The per-endpoint numbers
//! live in the connection pool (`client::Pool::endpoints`), under the lock it takes
//! anyway. Merging across workers happens on the Lua side's request for a report: each
//! worker publishes its [`Snapshot`] as JSON, and [`merge`] adds them up.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Why a request failed, as counted in `failures`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The route's `timeout` ran out (504).
    Timeout,
    /// The request body or the function's answer was larger than the route allows.
    TooLarge,
    /// The function ran and failed (Invoke API, `X-Amz-Function-Error`).
    FunctionError,
    /// DNS, connect or TLS handshake failed (503).
    Unreachable,
    /// The connection broke or the answer was not valid HTTP (502).
    BadResponse,
    /// No AWS credentials could be had (503).
    NoCredentials,
}

impl Failure {
    const ALL: [Failure; 6] = [
        Failure::Timeout,
        Failure::TooLarge,
        Failure::FunctionError,
        Failure::Unreachable,
        Failure::BadResponse,
        Failure::NoCredentials,
    ];

    fn name(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::TooLarge => "too_large",
            Failure::FunctionError => "function_error",
            Failure::Unreachable => "unreachable",
            Failure::BadResponse => "bad_response",
            Failure::NoCredentials => "no_credentials",
        }
    }
}

/// Upper bounds of the latency buckets, in microseconds: 1 ms to 15 min (Lambda's
/// longest run), roughly Prometheus's default spacing.
const BOUNDS_US: [u64; 17] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    300_000_000,
    900_000_000,
];

/// A histogram with fixed buckets; each observation bumps one bucket (not cumulative,
/// so one atomic add), the sum and nothing else.
pub struct Histogram {
    /// One per bound, and the last for everything above them (`+Inf`).
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Self {
            buckets: [const { AtomicU64::new(0) }; BOUNDS_US.len() + 1],
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BOUNDS_US.partition_point(|&b| b < us);
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    fn snapshot(&self) -> Latency {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(BOUNDS_US.len() + 1);
        for (i, count) in self.buckets.iter().enumerate() {
            total += count.load(Relaxed);
            let le = BOUNDS_US
                .get(i)
                .map_or_else(|| "+Inf".into(), |&b| seconds(b));
            buckets.push(Bucket { le, count: total });
        }
        Latency {
            buckets,
            count: total,
            sum: self.sum_us.load(Relaxed) as f64 / 1e6,
        }
    }
}

/// `us` microseconds as seconds without float noise ("0.0025", "1", "900").
fn seconds(us: u64) -> String {
    let s = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// This worker's counters.
pub struct Counters {
    /// By the class of the status the client got: 1xx to 5xx.
    answered: [AtomicU64; 5],
    failures: [AtomicU64; Failure::ALL.len()],
    in_flight: AtomicU64,
    /// Streamed answers whose body is still flowing (their call is no longer in flight).
    streaming: AtomicU64,
    /// The function's time to the head of its answer.
    pub latency: Histogram,
    credential_fetches: AtomicU64,
    credential_failures: AtomicU64,
    /// The last failed fetch: its message (never a secret: see `creds`) and when.
    credential_error: Mutex<Option<(String, u64)>>,
    runtime_starts: AtomicU64,
}

/// The counters of this process (one nginx worker).
pub static WORKER: Counters = Counters::new();

impl Counters {
    const fn new() -> Self {
        Self {
            answered: [const { AtomicU64::new(0) }; 5],
            failures: [const { AtomicU64::new(0) }; Failure::ALL.len()],
            in_flight: AtomicU64::new(0),
            streaming: AtomicU64::new(0),
            latency: Histogram::new(),
            credential_fetches: AtomicU64::new(0),
            credential_failures: AtomicU64::new(0),
            credential_error: parking_lot::const_mutex(None),
            runtime_starts: AtomicU64::new(0),
        }
    }

    /// A request was answered with `status`.
    pub fn answered(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.answered[class].fetch_add(1, Relaxed);
    }

    pub fn failed(&self, why: Failure) {
        let i = Failure::ALL.iter().position(|&f| f == why).unwrap_or(0);
        self.failures[i].fetch_add(1, Relaxed);
    }

    /// A call starts; it is in flight until the returned guard goes.
    pub fn call_started(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(&self.in_flight)
    }

    /// A streamed answer's body starts flowing; it counts until the returned guard goes.
    pub fn stream_started(&self) -> InFlight<'_> {
        self.streaming.fetch_add(1, Relaxed);
        InFlight(&self.streaming)
    }

    /// A credential fetch ended; `error` is its message when it failed.
    pub fn credential_fetch(&self, error: Option<String>) {
        self.credential_fetches.fetch_add(1, Relaxed);
        if let Some(message) = error {
            self.credential_failures.fetch_add(1, Relaxed);
            *self.credential_error.lock() = Some((message, unix_now()));
        }
    }

    /// A runtime was started in this process (the first, or a restart).
    pub fn runtime_started(&self) {
        self.runtime_starts.fetch_add(1, Relaxed);
    }

    /// Runtimes started in this process after its first (each after one stopped).
    pub fn runtime_restarts(&self) -> u64 {
        self.runtime_starts.load(Relaxed).saturating_sub(1)
    }

    /// Forgets what an inherited copy counted (in a forked child; atomics only, as
    /// after a fork nothing that may be locked can be touched).
    pub(crate) fn reset_after_fork(&self) {
        let all = self.answered.iter().chain(&self.failures).chain([
            &self.in_flight,
            &self.streaming,
            &self.credential_fetches,
            &self.credential_failures,
            &self.runtime_starts,
            &self.latency.sum_us,
        ]);
        for counter in all.chain(&self.latency.buckets) {
            counter.store(0, Relaxed);
        }
    }

    /// This worker's counters; the runtime's own parts (queue, pool) are added by the
    /// caller.
    pub fn snapshot(&self, pid: u32) -> Snapshot {
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        let credential_error = self.credential_error.lock().clone();
        Snapshot {
            workers: 1,
            all_workers: None,
            pids: vec![pid],
            requests: classes
                .iter()
                .zip(&self.answered)
                .map(|(c, n)| (c.to_string(), n.load(Relaxed)))
                .collect(),
            failures: Failure::ALL
                .iter()
                .zip(&self.failures)
                .map(|(f, n)| (f.name().to_string(), n.load(Relaxed)))
                .collect(),
            in_flight: self.in_flight.load(Relaxed),
            streaming: self.streaming.load(Relaxed),
            queue_depth: 0,
            tickets: 0,
            runtime_restarts: self.runtime_restarts(),
            time_to_head_seconds: self.latency.snapshot(),
            endpoints: BTreeMap::new(),
            credentials: Credentials {
                fetches: self.credential_fetches.load(Relaxed),
                failures: self.credential_failures.load(Relaxed),
                last_error: credential_error.as_ref().map(|(m, _)| m.clone()),
                last_error_at: credential_error.map(|(_, at)| at),
            },
        }
    }
}

/// Counts one in a gauge while it lives.
pub struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What one worker, or several merged, report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// How many workers' snapshots this holds.
    pub workers: u64,
    /// In a report: whether it covers every worker (a shared dict was there to collect
    /// them), or only the one that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_workers: Option<bool>,
    pub pids: Vec<u32>,
    /// Requests by the class of the status answered to the client.
    pub requests: BTreeMap<String, u64>,
    /// Failed requests by cause (each also counted in `requests`, as 4xx or 5xx).
    pub failures: BTreeMap<String, u64>,
    /// Calls the runtime is working on, up to the answer's head.
    pub in_flight: u64,
    /// Streamed answers whose body is still flowing to the client.
    #[serde(default)]
    pub streaming: u64,
    /// Requests submitted and not yet picked up by the runtime.
    pub queue_depth: u64,
    /// Tickets held: in flight, or done and not yet taken by nginx.
    pub tickets: u64,
    pub runtime_restarts: u64,
    pub time_to_head_seconds: Latency,
    /// By endpoint (`https://host:port`).
    pub endpoints: BTreeMap<String, EndpointStats>,
    pub credentials: Credentials,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Cumulative, Prometheus-style: `count` is how many took at most `le` seconds.
    pub buckets: Vec<Bucket>,
    pub count: u64,
    pub sum: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub le: String,
    pub count: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStats {
    /// Pooled connections waiting for a request.
    pub idle: u64,
    /// Requests on a connection to the endpoint right now.
    pub active: u64,
    pub connections_opened: u64,
    pub tls_handshakes_full: u64,
    pub tls_handshakes_resumed: u64,
}

impl EndpointStats {
    fn add(&mut self, o: &EndpointStats) {
        self.idle += o.idle;
        self.active += o.active;
        self.connections_opened += o.connections_opened;
        self.tls_handshakes_full += o.tls_handshakes_full;
        self.tls_handshakes_resumed += o.tls_handshakes_resumed;
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    /// Fetches of dynamic credentials (first fetches and refreshes).
    pub fetches: u64,
    pub failures: u64,
    /// The message of the latest failure (never a secret) and its Unix time.
    pub last_error: Option<String>,
    pub last_error_at: Option<u64>,
}

/// Adds up workers' snapshots (given as JSON). A snapshot that does not parse is
/// skipped and named in the error list.
pub fn merge<'a>(snapshots: impl IntoIterator<Item = &'a str>) -> (Snapshot, Vec<String>) {
    let mut total = Snapshot::default();
    let mut errors = Vec::new();
    for json in snapshots {
        match serde_json::from_str::<Snapshot>(json) {
            Ok(s) => total.add(&s),
            Err(e) => errors.push(format!("a worker's statistics were unreadable: {e}")),
        }
    }
    (total, errors)
}

impl Snapshot {
    fn add(&mut self, o: &Snapshot) {
        self.workers += o.workers;
        self.pids.extend(&o.pids);
        for (k, v) in &o.requests {
            *self.requests.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.failures {
            *self.failures.entry(k.clone()).or_default() += v;
        }
        self.in_flight += o.in_flight;
        self.streaming += o.streaming;
        self.queue_depth += o.queue_depth;
        self.tickets += o.tickets;
        self.runtime_restarts += o.runtime_restarts;
        let lat = &mut self.time_to_head_seconds;
        if lat.buckets.is_empty() {
            lat.buckets = o.time_to_head_seconds.buckets.clone();
        } else {
            // Cumulative counts add up bucket by bucket (all workers share the bounds).
            for (mine, theirs) in lat.buckets.iter_mut().zip(&o.time_to_head_seconds.buckets) {
                mine.count += theirs.count;
            }
        }
        lat.count += o.time_to_head_seconds.count;
        lat.sum += o.time_to_head_seconds.sum;
        for (k, v) in &o.endpoints {
            self.endpoints.entry(k.clone()).or_default().add(v);
        }
        let c = &mut self.credentials;
        c.fetches += o.credentials.fetches;
        c.failures += o.credentials.failures;
        if o.credentials.last_error_at > c.last_error_at {
            c.last_error.clone_from(&o.credentials.last_error);
            c.last_error_at = o.credentials.last_error_at;
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            "workers",
            "gauge",
            "nginx workers whose statistics are included.",
        );
        let _ = writeln!(out, "apisix_aws_lambda_workers {}", self.workers);
        family(
            &mut out,
            "requests_total",
            "counter",
            "Requests by the class of the status answered to the client.",
        );
        for (code, n) in &self.requests {
            let _ = writeln!(
                out,
                "apisix_aws_lambda_requests_total{{code=\"{code}\"}} {n}"
            );
        }
        family(
            &mut out,
            "failures_total",
            "counter",
            "Failed requests by cause.",
        );
        for (reason, n) in &self.failures {
            let _ = writeln!(
                out,
                "apisix_aws_lambda_failures_total{{reason=\"{reason}\"}} {n}"
            );
        }
        for (name, help, value) in [
            (
                "in_flight",
                "Calls the runtimes are working on, up to the answer's head.",
                self.in_flight,
            ),
            (
                "streaming",
                "Streamed answers whose body is still flowing to the client.",
                self.streaming,
            ),
            (
                "queue_depth",
                "Requests waiting for a runtime to pick them up.",
                self.queue_depth,
            ),
            (
                "tickets",
                "Requests in flight or answered and not yet taken by nginx.",
                self.tickets,
            ),
        ] {
            family(&mut out, name, "gauge", help);
            let _ = writeln!(out, "apisix_aws_lambda_{name} {value}");
        }
        family(
            &mut out,
            "runtime_restarts_total",
            "counter",
            "Runtimes started again after one died.",
        );
        let _ = writeln!(
            out,
            "apisix_aws_lambda_runtime_restarts_total {}",
            self.runtime_restarts
        );

        let lat = &self.time_to_head_seconds;
        family(
            &mut out,
            "time_to_head_seconds",
            "histogram",
            "The function's time from the request to the head of its answer.",
        );
        for b in &lat.buckets {
            let _ = writeln!(
                out,
                "apisix_aws_lambda_time_to_head_seconds_bucket{{le=\"{}\"}} {}",
                b.le, b.count
            );
        }
        let _ = writeln!(
            out,
            "apisix_aws_lambda_time_to_head_seconds_sum {}",
            lat.sum
        );
        let _ = writeln!(
            out,
            "apisix_aws_lambda_time_to_head_seconds_count {}",
            lat.count
        );

        family(
            &mut out,
            "pool_connections",
            "gauge",
            "Connections to an endpoint, idle in the pool or active.",
        );
        for (ep, s) in &self.endpoints {
            let ep = label(ep);
            let _ = writeln!(
                out,
                "apisix_aws_lambda_pool_connections{{endpoint=\"{ep}\",state=\"idle\"}} {}",
                s.idle
            );
            let _ = writeln!(
                out,
                "apisix_aws_lambda_pool_connections{{endpoint=\"{ep}\",state=\"active\"}} {}",
                s.active
            );
        }
        family(
            &mut out,
            "connections_opened_total",
            "counter",
            "New connections to an endpoint.",
        );
        for (ep, s) in &self.endpoints {
            let _ = writeln!(
                out,
                "apisix_aws_lambda_connections_opened_total{{endpoint=\"{}\"}} {}",
                label(ep),
                s.connections_opened
            );
        }
        family(
            &mut out,
            "tls_handshakes_total",
            "counter",
            "TLS handshakes with an endpoint, full or resumed.",
        );
        for (ep, s) in &self.endpoints {
            let ep = label(ep);
            let _ = writeln!(
                out,
                "apisix_aws_lambda_tls_handshakes_total{{endpoint=\"{ep}\",kind=\"full\"}} {}",
                s.tls_handshakes_full
            );
            let _ = writeln!(
                out,
                "apisix_aws_lambda_tls_handshakes_total{{endpoint=\"{ep}\",kind=\"resumed\"}} {}",
                s.tls_handshakes_resumed
            );
        }
        let c = &self.credentials;
        family(
            &mut out,
            "credential_fetches_total",
            "counter",
            "Fetches of AWS credentials, first ones and refreshes.",
        );
        let _ = writeln!(
            out,
            "apisix_aws_lambda_credential_fetches_total {}",
            c.fetches
        );
        family(
            &mut out,
            "credential_fetch_failures_total",
            "counter",
            "Failed fetches of AWS credentials.",
        );
        let _ = writeln!(
            out,
            "apisix_aws_lambda_credential_fetch_failures_total {}",
            c.failures
        );
        if let Some(at) = c.last_error_at {
            family(
                &mut out,
                "credential_last_failure_timestamp_seconds",
                "gauge",
                "When a fetch of AWS credentials last failed (the message is in the JSON stats).",
            );
            let _ = writeln!(
                out,
                "apisix_aws_lambda_credential_last_failure_timestamp_seconds {at}"
            );
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP apisix_aws_lambda_{name} {help}");
    let _ = writeln!(out, "# TYPE apisix_aws_lambda_{name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped, as the text format asks.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(1_000)); // exactly on a bound: le="0.001"
        h.observe(Duration::from_micros(1_001));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(3600)); // over every bound: +Inf only
        let s = h.snapshot();
        let at = |le: &str| s.buckets.iter().find(|b| b.le == le).unwrap().count;
        assert_eq!(at("0.001"), 1);
        assert_eq!(at("0.0025"), 2);
        assert_eq!(at("0.025"), 2);
        assert_eq!(at("0.05"), 3);
        assert_eq!(at("900"), 3);
        assert_eq!(at("+Inf"), 4);
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets.len(), BOUNDS_US.len() + 1);
        assert!((s.sum - (0.001 + 0.001001 + 0.03 + 3600.0)).abs() < 1e-9);
    }

    #[test]
    fn bounds_are_written_as_plain_seconds() {
        assert_eq!(seconds(1_000), "0.001");
        assert_eq!(seconds(2_500), "0.0025");
        assert_eq!(seconds(1_000_000), "1");
        assert_eq!(seconds(2_500_000), "2.5");
        assert_eq!(seconds(900_000_000), "900");
    }

    fn worker(pid: u32, ok: u64, lat_ms: &[u64]) -> Snapshot {
        let c = Counters::new();
        for _ in 0..ok {
            c.answered(200);
        }
        c.answered(504);
        c.failed(Failure::Timeout);
        for &ms in lat_ms {
            c.latency.observe(Duration::from_millis(ms));
        }
        let mut s = c.snapshot(pid);
        s.endpoints.insert(
            "https://fn.example:443".into(),
            EndpointStats {
                idle: 2,
                connections_opened: 3,
                tls_handshakes_full: 1,
                tls_handshakes_resumed: 2,
                ..Default::default()
            },
        );
        s
    }

    #[test]
    fn merging_adds_up_every_worker() {
        let a = serde_json::to_string(&worker(10, 3, &[1, 200])).unwrap();
        let b = serde_json::to_string(&worker(11, 4, &[7])).unwrap();
        let (total, errors) = merge([a.as_str(), b.as_str(), "{not json"]);
        assert_eq!(errors.len(), 1);
        assert_eq!(total.workers, 2);
        assert_eq!(total.pids, [10, 11]);
        assert_eq!(total.requests["2xx"], 7);
        assert_eq!(total.requests["5xx"], 2);
        assert_eq!(total.failures["timeout"], 2);
        assert_eq!(total.failures["too_large"], 0);
        assert_eq!(total.time_to_head_seconds.count, 3);
        let at = |le: &str| {
            let b = total
                .time_to_head_seconds
                .buckets
                .iter()
                .find(|b| b.le == le);
            b.unwrap().count
        };
        assert_eq!(at("0.001"), 1);
        assert_eq!(at("0.01"), 2);
        assert_eq!(at("0.25"), 3);
        let ep = total.endpoints["https://fn.example:443"];
        assert_eq!(
            (ep.idle, ep.connections_opened, ep.tls_handshakes_resumed),
            (4, 6, 4)
        );
    }

    #[test]
    fn the_newest_credential_error_wins() {
        let mut a = Snapshot::default();
        a.credentials.last_error = Some("old".into());
        a.credentials.last_error_at = Some(100);
        let mut b = Snapshot::default();
        b.credentials.last_error = Some("new".into());
        b.credentials.last_error_at = Some(200);
        let mut total = Snapshot::default();
        total.add(&b);
        total.add(&a);
        assert_eq!(total.credentials.last_error.as_deref(), Some("new"));
    }

    #[test]
    fn prometheus_text_follows_the_conventions() {
        let mut s = worker(10, 2, &[3]);
        s.endpoints
            .insert("http://we\"ird\\host:80".into(), EndpointStats::default());
        let text = s.prometheus();
        for line in [
            "# TYPE apisix_aws_lambda_requests_total counter",
            "apisix_aws_lambda_requests_total{code=\"2xx\"} 2",
            "apisix_aws_lambda_failures_total{reason=\"timeout\"} 1",
            "# TYPE apisix_aws_lambda_time_to_head_seconds histogram",
            "apisix_aws_lambda_time_to_head_seconds_bucket{le=\"0.0025\"} 0",
            "apisix_aws_lambda_time_to_head_seconds_bucket{le=\"0.005\"} 1",
            "apisix_aws_lambda_time_to_head_seconds_bucket{le=\"+Inf\"} 1",
            "apisix_aws_lambda_time_to_head_seconds_count 1",
            "apisix_aws_lambda_time_to_head_seconds_sum 0.003",
            "apisix_aws_lambda_pool_connections{endpoint=\"https://fn.example:443\",state=\"idle\"} 2",
            "apisix_aws_lambda_tls_handshakes_total{endpoint=\"https://fn.example:443\",kind=\"resumed\"} 2",
            "apisix_aws_lambda_connections_opened_total{endpoint=\"http://we\\\"ird\\\\host:80\"} 0",
            "apisix_aws_lambda_workers 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Every sample belongs to a family declared before it, each declared once.
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!declared.contains(&name), "{name} declared twice");
                declared.push(name);
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|b| declared.contains(b))
                    .unwrap_or(name);
                assert_eq!(declared.last(), Some(&base), "{line}");
            }
        }
    }

    #[test]
    fn a_credential_failure_keeps_its_message_and_time() {
        let c = Counters::new();
        c.credential_fetch(None);
        c.credential_fetch(Some("STS said no".into()));
        let s = c.snapshot(1);
        assert_eq!((s.credentials.fetches, s.credentials.failures), (2, 1));
        assert_eq!(s.credentials.last_error.as_deref(), Some("STS said no"));
        assert!(s.credentials.last_error_at.unwrap() > 0);
    }
}
