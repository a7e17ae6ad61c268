//! What the soak samples every 10 s, and the CSV it is written to.

use std::fmt::Write as _;

pub const EVERY_SECONDS: u64 = 10;

#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Seconds since the load started.
    pub at: f64,
    /// Envoy's resident memory.
    pub rss_kib: u64,
    /// The module's gauge `azp_bridge.memory_bytes`: the VMs' linear memory.
    pub vm_bytes: i64,
    /// Wasm VMs alive (`wasm.envoy.wasm.runtime.v8.active`).
    pub vms: i64,
    /// Requests answered per second since the last sample.
    pub rps: f64,
    /// Answers no rule allowed, since the last sample.
    pub errors: u64,
    /// 5xx answers since the last sample (the faults cause some).
    pub server_errors: u64,
}

/// A fault, marked on the plot.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: f64,
    pub what: &'static str,
}

pub fn csv(samples: &[Sample]) -> String {
    let mut out = String::from("seconds,envoy_rss_kib,vm_memory_bytes,vms,rps,errors,server_errors\n");
    for s in samples {
        let _ = writeln!(
            out,
            "{:.0},{},{},{},{:.1},{},{}",
            s.at, s.rss_kib, s.vm_bytes, s.vms, s.rps, s.errors, s.server_errors
        );
    }
    out
}

pub fn events_csv(events: &[Event]) -> String {
    let mut out = String::from("seconds,event\n");
    for e in events {
        let _ = writeln!(out, "{:.0},{}", e.at, e.what);
    }
    out
}
