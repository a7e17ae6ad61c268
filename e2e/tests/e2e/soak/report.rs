//! The soak's verdict: each check with its figures, as REPORT.md and as the
//! test's assertion.

use super::keycloak_refreshes::Refreshes;
use super::samples::{Event, Sample};
use super::traffic::{Kind, Tally};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// Memory is judged after this share of the run (at least 30 s, at most
/// 5 min): allocators, caches and the first pushes settle first.
fn warm_up_seconds(minutes: f64) -> f64 {
    (minutes * 60.0 / 5.0).clamp(30.0, 300.0)
}

/// A VM's linear memory only grows, a page (64 KiB) at a time; once warm,
/// the same requests and the same pushes need no new page. Allowed: one
/// page per VM over the largest warm-up figure, so a page taken by a
/// rarely-reached size of request is not a leak, but a page a minute is.
const VM_SLACK_BYTES: i64 = 65_536;

/// Envoy's own memory moves with connections, draining listeners and its
/// allocator's caching: the last third of the run may not be above the
/// post-warm-up third by more than 10 % plus 8 MiB. A leak of 100 bytes a
/// request at this load (some hundred requests a second) breaks it in a
/// 10-minute run.
fn rss_bound_kib(reference: f64) -> f64 {
    reference * 1.10 + 8192.0
}

pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub figures: String,
}

pub struct Report {
    pub minutes: f64,
    pub summary: Vec<(String, String)>,
    pub checks: Vec<Check>,
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0.0), |(s, n), v| (s + v, n + 1.0));
    if n > 0.0 {
        sum / n
    } else {
        0.0
    }
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        minutes: f64,
        gauge_vms: i64,
        samples: &[Sample],
        events: &[Event],
        stats: &HashMap<String, i64>,
        tally: &Tally,
        refreshes: &Refreshes,
        logs: &[(&str, String)],
        secrets: &[String],
    ) -> Report {
        let counter = |name: &str| {
            stats
                .get(&format!("wasmcustom.azp_bridge.{name}"))
                .copied()
                .unwrap_or(0)
        };
        let counted: i64 = stats
            .iter()
            .filter(|(name, _)| {
                let name = name.strip_prefix("wasmcustom.azp_bridge.").unwrap_or("");
                name == "rewritten" || name.starts_with("passed.") || name.starts_with("rejected.")
            })
            .map(|(_, n)| *n)
            .sum();
        let sent = tally.counted.load(Ordering::Relaxed) + refreshes.sent.load(Ordering::Relaxed);
        let sent_of = |kinds: &[Kind]| kinds.iter().map(|k| tally.sent_of(*k)).sum::<u64>() as i64;
        let bridged = sent_of(&[
            Kind::Bridged,
            Kind::BridgedHeld,
            Kind::BridgedH2,
            Kind::BridgedH2Held,
            Kind::BridgedChunked,
            Kind::BridgedKeepAlive,
            Kind::PushedClient,
        ]) + refreshes.sent.load(Ordering::Relaxed) as i64;
        let mut checks = Vec::new();

        // Conservation, in total and per outcome.
        let per_outcome = [
            (
                "rewritten + passed.unknown_azp",
                counter("rewritten") + counter("passed.unknown_azp"),
                bridged,
            ),
            (
                "passed.same_client",
                counter("passed.same_client"),
                sent_of(&[Kind::SameClient]),
            ),
            (
                "passed.ambiguous",
                counter("passed.ambiguous"),
                sent_of(&[Kind::Ambiguous]),
            ),
            (
                "rejected.body_too_large",
                counter("rejected.body_too_large"),
                sent_of(&[Kind::Oversized, Kind::OversizedHeld]),
            ),
        ];
        let mut figures = format!("{sent} token requests sent whole, {counted} counted");
        for (name, got, want) in per_outcome {
            let _ = write!(figures, "; {name} {got} of {want}");
        }
        checks.push(Check {
            name: "every token request counted exactly once",
            passed: counted == sent as i64 && per_outcome.iter().all(|(_, got, want)| got == want),
            figures,
        });

        // Statuses.
        let mut examples = tally.examples.lock().unwrap().clone();
        examples.extend(refreshes.examples.lock().unwrap().iter().cloned());
        let unexpected = tally.unexpected.load(Ordering::Relaxed) + refreshes.unexpected.load(Ordering::Relaxed);
        checks.push(Check {
            name: "no unexpected status",
            passed: unexpected == 0,
            figures: format!("{unexpected} unexpected {examples:?}"),
        });

        // Keycloak.
        let accepted = refreshes.accepted.load(Ordering::Relaxed);
        checks.push(Check {
            name: "every real bridged refresh accepted by Keycloak",
            passed: refreshes.unexpected.load(Ordering::Relaxed) == 0 && accepted > 0,
            figures: format!(
                "{} sent, {accepted} accepted, {} answered 503 while Keycloak was down, {} refused once for a session the restart dropped",
                refreshes.sent.load(Ordering::Relaxed),
                refreshes.while_down.load(Ordering::Relaxed),
                refreshes.lost_to_restart.load(Ordering::Relaxed)
            ),
        });

        // Logs.
        let mut leaks = Vec::new();
        for (log, text) in logs {
            for secret in secrets {
                if text.contains(secret.as_str()) {
                    leaks.push(format!("{log}: a secret or token of {} chars", secret.len()));
                }
            }
            for sign in ["panicked", "wasm trap", "failed to run", "VM restart"] {
                if text.contains(sign) {
                    leaks.push(format!("{log}: {sign:?}"));
                }
            }
        }
        checks.push(Check {
            name: "no secret in any log, no trap",
            passed: leaks.is_empty(),
            figures: format!(
                "{} secrets and tokens looked for in {} ({} bytes); {leaks:?}",
                secrets.len(),
                logs.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", "),
                logs.iter().map(|(_, text)| text.len()).sum::<usize>()
            ),
        });

        // Memory.
        let warm = warm_up_seconds(minutes);
        let (during, after): (Vec<&Sample>, Vec<&Sample>) = samples.iter().partition(|s| s.at <= warm);
        let vm_warm = during.iter().map(|s| s.vm_bytes).max().unwrap_or(0);
        let vm_after = after.iter().map(|s| s.vm_bytes).max().unwrap_or(0);
        let vms = samples.iter().map(|s| s.vms).max().unwrap_or(0);
        checks.push(Check {
            name: "VM memory flat after warm-up",
            passed: !after.is_empty() && vm_after <= vm_warm + VM_SLACK_BYTES * gauge_vms,
            figures: format!(
                "{vms} VMs alive, {gauge_vms} in the gauge (the workers' and the main thread's); largest during warm-up ({warm:.0} s) {vm_warm} bytes ({} a VM), after it {vm_after} bytes (bound: + {VM_SLACK_BYTES} a VM)",
                vm_warm / gauge_vms
            ),
        });
        let third = after.len() / 3;
        let rss_early = mean(after.iter().take(third.max(1)).map(|s| s.rss_kib as f64));
        let rss_late = mean(after.iter().skip(after.len() - third.max(1)).map(|s| s.rss_kib as f64));
        checks.push(Check {
            name: "Envoy RSS flat after warm-up",
            passed: !after.is_empty() && rss_late <= rss_bound_kib(rss_early),
            figures: format!(
                "mean of the first third after warm-up {rss_early:.0} KiB, of the last third {rss_late:.0} KiB (bound {:.0} KiB)",
                rss_bound_kib(rss_early)
            ),
        });

        let first = samples.first().cloned().unwrap_or_default();
        let last = samples.last().cloned().unwrap_or_default();
        let count = |what: &str| events.iter().filter(|e| e.what == what).count();
        let summary = vec![
            ("run".to_owned(), format!("{minutes} min, {} samples", samples.len())),
            (
                "requests".to_owned(),
                format!(
                    "{} answered ({:.0}/s on average, {:.0}–{:.0} per sample)",
                    tally.sent.load(Ordering::Relaxed) + refreshes.sent.load(Ordering::Relaxed),
                    mean(samples.iter().map(|s| s.rps)),
                    samples.iter().map(|s| s.rps).fold(f64::INFINITY, f64::min),
                    samples.iter().map(|s| s.rps).fold(0.0, f64::max)
                ),
            ),
            (
                "faults".to_owned(),
                format!(
                    "{} pushes, {} refused pushes, {} Keycloak restarts, {} upstream reset windows",
                    count("push"),
                    count("push refused"),
                    count("keycloak stopped"),
                    count("upstream resets")
                ),
            ),
            (
                "Envoy RSS".to_owned(),
                format!(
                    "{} KiB at {:.0} s, {} KiB at {:.0} s",
                    first.rss_kib, first.at, last.rss_kib, last.at
                ),
            ),
            (
                "VM linear memory (all VMs)".to_owned(),
                format!(
                    "{} bytes at {:.0} s, {} bytes at {:.0} s",
                    first.vm_bytes, first.at, last.vm_bytes, last.at
                ),
            ),
            (
                "by kind and status".to_owned(),
                format!("{:?}", tally.by_kind.lock().unwrap()),
            ),
        ];
        Report {
            minutes,
            summary,
            checks,
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Soak run ({} min)\n\nWritten by `make soak` (e2e/tests/e2e/soak/); samples.csv, events.csv and soak.png beside it.\n\n",
            self.minutes
        );
        for (name, value) in &self.summary {
            let _ = writeln!(out, "- {name}: {value}");
        }
        out.push_str("\n| check | result | figures |\n| --- | --- | --- |\n");
        for check in &self.checks {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                check.name,
                if check.passed { "pass" } else { "FAIL" },
                check.figures
            );
        }
        out
    }

    pub fn assert_passed(&self) {
        let failed: Vec<&str> = self.checks.iter().filter(|c| !c.passed).map(|c| c.name).collect();
        assert!(failed.is_empty(), "soak failed: {failed:?}\n{}", self.markdown());
    }
}
