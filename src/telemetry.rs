//! What the server counts and times, under their Prometheus names (one place for every metric
//! name and label), and the Prometheus recorder `serve` installs.
//!
//! The phone's hit path pays one atomic add: [`RequestMeters`] holds a handle per
//! (transport, file kind, result), made once when the resolver is built. Without an installed
//! recorder (the CLI, tests of the library) every handle is a no-op.

use std::sync::OnceLock;

use metrics::{Counter, counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Transports, as labelled.
pub const TRANSPORTS: [&str; 3] = ["http", "https", "tftp"];

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `<mac>.boot`, `y000000000000.boot`.
    Boot,
    /// Files every phone of a model gets (`y000000000096.cfg`, Polycom's common files).
    Common,
    /// A phone's own files (`<mac>.cfg`, `<mac>-lines.cfg`).
    PerMac,
    /// Files from the operator's files directory.
    Static,
    /// Firmware images (stored or recovery).
    Firmware,
}

const KINDS: [&str; 5] = ["boot", "common", "per_mac", "static", "firmware"];

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Result {
    Served,
    NotFound,
    Unauthorized,
    Banned,
}

const RESULTS: [&str; 4] = ["served", "not_found", "unauthorized", "banned"];

/// Request counters, one handle per label set.
#[derive(Debug)]
pub struct RequestMeters {
    handles: Vec<Counter>,
}

impl Default for RequestMeters {
    fn default() -> Self {
        let mut handles = Vec::with_capacity(TRANSPORTS.len() * KINDS.len() * RESULTS.len());
        for t in TRANSPORTS {
            for k in KINDS {
                for r in RESULTS {
                    handles.push(counter!("phoneprov_requests_total",
                        "transport" => t, "kind" => k, "result" => r));
                }
            }
        }
        RequestMeters { handles }
    }
}

impl RequestMeters {
    /// Counts one request (`transport` is an index into [`TRANSPORTS`]).
    pub fn count(&self, transport: usize, kind: Kind, result: Result) {
        let i = (transport * KINDS.len() + kind as usize) * RESULTS.len() + result as usize;
        if let Some(c) = self.handles.get(i) {
            c.increment(1);
        }
    }
}

/// Latency buckets for answering a request (seconds): a memory hit is tens of microseconds.
const LATENCY: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25, 1.0, 5.0,
];
/// Buckets for long things (a render, a sync, a TFTP transfer), in seconds.
const LONG: [f64; 10] = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's Prometheus recorder (once; later calls return the same handle).
pub fn install() -> Option<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Some(h.clone());
    }
    let built = PrometheusBuilder::new()
        .set_buckets(&LONG)
        .and_then(|b| {
            b.set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(
                    "phoneprov_request_duration_seconds".into(),
                ),
                &LATENCY,
            )
        })
        .ok()?;
    let recorder = built.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    describe();
    let _ = HANDLE.set(handle.clone());
    Some(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "phoneprov_requests_total",
        "Phone requests by transport, file kind and result"
    );
    describe_histogram!(
        "phoneprov_request_duration_seconds",
        "Time to answer a phone's HTTP request (to the first byte)"
    );
    describe_gauge!(
        "phoneprov_tftp_transfers_active",
        "TFTP transfers running now"
    );
    describe_counter!(
        "phoneprov_tftp_transfers_total",
        "TFTP transfers by how they ended"
    );
    describe_counter!("phoneprov_tftp_bytes_sent_total", "TFTP payload bytes sent");
    describe_histogram!(
        "phoneprov_render_seconds",
        "Time to re-render what changed and publish it"
    );
    describe_gauge!(
        "phoneprov_snapshot_files",
        "Rendered files held in memory (sites' shared files; phones' files are on disk)"
    );
    describe_gauge!(
        "phoneprov_file_cache_bytes",
        "Bytes of phones' files held in the memory cache"
    );
    describe_counter!(
        "phoneprov_file_cache_lookups_total",
        "Phones' file lookups, by where they were answered from (memory or disk)"
    );
    describe_gauge!("phoneprov_snapshot_bytes", "Bytes of rendered files held");
    describe_gauge!("phoneprov_bans_active", "Addresses banned now");
    describe_counter!("phoneprov_bans_total", "Bans started");
    describe_counter!(
        "phoneprov_audit_events_dropped_total",
        "Fetch-audit events dropped (too many distinct fetches pending)"
    );
    describe_counter!(
        "phoneprov_flush_failures_total",
        "Failed writes of last-seen and audit records (kept and retried)"
    );
    describe_counter!("phoneprov_pbx_sync_total", "PBX syncs by PBX and result");
    describe_histogram!("phoneprov_pbx_sync_seconds", "PBX sync duration");
    describe_counter!(
        "phoneprov_cloud_calls_total",
        "Calls to Yealink's cloud (YMCS, RPS) by service and result"
    );
}

/// A TFTP transfer started; the returned guard marks it ended (with [`TftpEnded::end`]).
pub fn tftp_started() -> TftpEnded {
    gauge!("phoneprov_tftp_transfers_active").increment(1.0);
    TftpEnded {
        started: std::time::Instant::now(),
        ended: false,
    }
}

/// A running TFTP transfer, as counted.
pub struct TftpEnded {
    started: std::time::Instant,
    ended: bool,
}

impl TftpEnded {
    /// How it ended (`done`, `unconfirmed`, `client_error`, `abandoned`, `gone`, `superseded`,
    /// `refused`) and how many payload bytes went out.
    pub fn end(mut self, how: &'static str, bytes: u64) {
        counter!("phoneprov_tftp_transfers_total", "end" => how).increment(1);
        counter!("phoneprov_tftp_bytes_sent_total").increment(bytes);
        histogram!("phoneprov_tftp_transfer_seconds").record(self.started.elapsed().as_secs_f64());
        self.ended = true;
    }
}

impl Drop for TftpEnded {
    fn drop(&mut self) {
        gauge!("phoneprov_tftp_transfers_active").decrement(1.0);
        if !self.ended {
            counter!("phoneprov_tftp_transfers_total", "end" => "refused").increment(1);
        }
    }
}

/// A publish: how long it took and what the snapshot holds now.
pub fn published(seconds: f64, files: usize, bytes: usize) {
    histogram!("phoneprov_render_seconds").record(seconds);
    snapshot(files, bytes);
}

/// What the snapshot holds.
pub fn snapshot(files: usize, bytes: usize) {
    gauge!("phoneprov_snapshot_files").set(files as f64);
    gauge!("phoneprov_snapshot_bytes").set(bytes as f64);
}

/// The memory cache of phones' files: bytes and entries held, lookups answered from memory
/// and from disk so far.
pub fn file_cache(bytes: usize, entries: usize, hits: u64, misses: u64) {
    gauge!("phoneprov_file_cache_bytes").set(bytes as f64);
    gauge!("phoneprov_file_cache_entries").set(entries as f64);
    counter!("phoneprov_file_cache_lookups_total", "from" => "memory").absolute(hits);
    counter!("phoneprov_file_cache_lookups_total", "from" => "disk").absolute(misses);
}

/// Bans: one started, and how many are active.
pub fn banned(active: usize) {
    counter!("phoneprov_bans_total").increment(1);
    gauge!("phoneprov_bans_active").set(active as f64);
}

/// Bans active now (after expiries).
pub fn bans_active(active: usize) {
    gauge!("phoneprov_bans_active").set(active as f64);
}

pub fn audit_dropped(n: u64) {
    counter!("phoneprov_audit_events_dropped_total").increment(n);
}

pub fn flush_failed() {
    counter!("phoneprov_flush_failures_total").increment(1);
}

/// A PBX sync ended (`ok`, `failed`, `refused`).
pub fn pbx_synced(pbx: &str, result: &'static str, seconds: f64) {
    counter!("phoneprov_pbx_sync_total", "pbx" => pbx.to_string(), "result" => result).increment(1);
    histogram!("phoneprov_pbx_sync_seconds", "pbx" => pbx.to_string()).record(seconds);
}

/// A call to Yealink's cloud (`ymcs` or `rps`) ended (`ok`, `error`, `throttled`).
pub fn cloud_call(service: &'static str, result: &'static str) {
    counter!("phoneprov_cloud_calls_total", "service" => service, "result" => result).increment(1);
}
