//! The filter's counters: the one place their names are defined.
//!
//! Envoy shows them as `wasmcustom.azp_bridge.<name>` in `/stats` (and
//! without the `wasmcustom.` prefix in Prometheus output). Requests count
//! into [`Counts`], in the VM's memory; the shell hands the pending counts
//! to Envoy once a second (on the root context's tick), which saves a host
//! call per request: the counters lag by at most a second.

use crate::policy::PassReason;
use std::cell::Cell;

/// Every counter name starts with this (the shell defines `PREFIX + name`).
pub const PREFIX: &str = "azp_bridge.";

/// One counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// A token request whose credentials were swapped.
    Rewritten,
    /// A token request over `max_body_bytes`, answered 413.
    RejectedBodyTooLarge,
    /// A bridged refresh response forwarded without its `id_token`.
    IdTokenDropped,
    /// A bridged refresh response forwarded as Keycloak sent it.
    ResponsePassed,
    /// A held token request whose body never came ([`crate::held`]).
    HeldWithoutBody,
    /// A token request forwarded untouched, for this reason
    /// (`passed.<reason>`; the reason's detail is not part of the name).
    Passed(PassReason),
}

/// The counters that are not pass reasons, in [`Counter::all`] order.
const FIXED: [(Counter, &str); 5] = [
    (Counter::Rewritten, "rewritten"),
    (Counter::RejectedBodyTooLarge, "rejected.body_too_large"),
    (Counter::IdTokenDropped, "id_token_dropped"),
    (Counter::ResponsePassed, "response_passed"),
    (Counter::HeldWithoutBody, "held_without_body"),
];

/// How many counters there are.
pub const COUNT: usize = FIXED.len() + PassReason::ALL.len();

impl Counter {
    /// Every counter, each once, in the order of [`Counter::index`].
    pub fn all() -> impl Iterator<Item = Counter> {
        FIXED
            .iter()
            .map(|(counter, _)| *counter)
            .chain(PassReason::ALL.iter().map(|reason| Counter::Passed(*reason)))
    }

    /// The name without [`PREFIX`]: `rewritten`, `passed.same_client`.
    pub fn name(self) -> String {
        match self {
            Counter::Passed(reason) => format!("passed.{}", reason.as_str()),
            fixed => FIXED
                .iter()
                .find(|(counter, _)| *counter == fixed)
                .map(|(_, name)| (*name).to_owned())
                .unwrap_or_default(),
        }
    }

    /// Its position in [`Counter::all`] (below [`COUNT`]).
    pub fn index(self) -> usize {
        match self {
            Counter::Rewritten => 0,
            Counter::RejectedBodyTooLarge => 1,
            Counter::IdTokenDropped => 2,
            Counter::ResponsePassed => 3,
            Counter::HeldWithoutBody => 4,
            Counter::Passed(reason) => FIXED.len() + pass_index(reason),
        }
    }
}

/// The position of a reason in [`PassReason::ALL`], whatever its detail.
fn pass_index(reason: PassReason) -> usize {
    match reason {
        PassReason::SameClient => 0,
        PassReason::UnknownAzp => 1,
        PassReason::CallerNotAllowed => 2,
        PassReason::RealmMismatch(_) => 3,
        PassReason::NotDecodable(_) => 4,
        PassReason::DuplicateParameter => 5,
        PassReason::NotRefreshGrant => 6,
        PassReason::NoToken => 7,
        PassReason::UpstreamNotAllowed => 8,
        PassReason::SigningFailed => 9,
        PassReason::Ambiguous(_) => 10,
    }
}

/// Every counter name, without [`PREFIX`], in [`Counter::all`] order (the
/// README's counter table is checked against it).
pub fn names() -> Vec<String> {
    Counter::all().map(Counter::name).collect()
}

/// The one gauge: the bytes of linear memory the bridge's VMs hold, summed
/// over them. Each VM counts once ([`VmShare`]), however many root contexts
/// it runs (one per filter configuration: two listeners, or a pushed
/// configuration while the old one drains). A VM's memory only grows, so a
/// rising sum after warm-up is a leak.
pub const MEMORY_GAUGE: &str = "memory_bytes";

/// Every gauge name, without [`PREFIX`].
pub fn gauge_names() -> Vec<String> {
    vec![MEMORY_GAUGE.to_owned()]
}

/// What one root context last reported to a summed gauge.
#[derive(Debug, Default)]
pub struct Reported {
    bytes: Cell<u64>,
}

impl Reported {
    /// The change to hand the host so that this context's share becomes
    /// `now_bytes` (0: nothing to hand over).
    pub fn change_to(&self, now_bytes: u64) -> i64 {
        let before = self.bytes.replace(now_bytes);
        let up = i64::try_from(now_bytes.saturating_sub(before)).unwrap_or(i64::MAX);
        let down = i64::try_from(before.saturating_sub(now_bytes)).unwrap_or(i64::MAX);
        up.saturating_sub(down)
    }

    /// The change that takes this context's whole share back (it is going).
    pub fn withdraw(&self) -> i64 {
        self.change_to(0)
    }
}

/// One VM's share of a summed gauge, shared by its root contexts: the VM
/// counts once while any of them is configured, and its share is taken back
/// when the last one goes. (Each root context reporting the whole VM, as
/// before, made the gauge a multiple of the memory that rose and fell with
/// configuration pushes: `make soak` read 8 to 16 shares for 3 VMs.) The
/// shell reports on the tick only: the VMs Envoy configures a new
/// configuration in and destroys without `on_done` never tick, and never
/// leave a share behind.
#[derive(Debug, Default)]
pub struct VmShare {
    roots: Cell<u32>,
    reported: Reported,
}

impl VmShare {
    /// A root context of this VM was configured.
    pub fn join(&self) {
        self.roots.set(self.roots.get().saturating_add(1));
    }

    /// The change to hand the host so that the VM's share becomes
    /// `now_bytes` (0 while no root context is configured).
    pub fn change_to(&self, now_bytes: u64) -> i64 {
        if self.roots.get() == 0 {
            return 0;
        }
        self.reported.change_to(now_bytes)
    }

    /// A configured root context goes: the change that takes the VM's share
    /// back if it was the last one, else 0.
    pub fn leave(&self) -> i64 {
        let roots = self.roots.get().saturating_sub(1);
        self.roots.set(roots);
        if roots == 0 {
            self.reported.withdraw()
        } else {
            0
        }
    }
}

/// Counts not yet handed to the host, one per counter.
#[derive(Debug, Default)]
pub struct Counts {
    pending: [Cell<u64>; COUNT],
}

impl Counts {
    pub fn count(&self, counter: Counter) {
        self.add(counter, 1);
    }

    pub fn add(&self, counter: Counter, n: u64) {
        if let Some(pending) = self.pending.get(counter.index()) {
            pending.set(pending.get().saturating_add(n));
        }
    }

    /// What `counter` counted since the last [`Counts::flush`].
    pub fn pending(&self, counter: Counter) -> u64 {
        self.pending.get(counter.index()).map_or(0, Cell::get)
    }

    /// Hands every non-zero pending count to `hand_over` (with the counter's
    /// index) and starts again from zero.
    pub fn flush(&self, mut hand_over: impl FnMut(usize, u64)) {
        for (index, pending) in self.pending.iter().enumerate() {
            let n = pending.replace(0);
            if n > 0 {
                hand_over(index, n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summed_gauge_gets_the_changes_and_its_share_back() {
        let reported = Reported::default();
        let mut sum: i64 = 0;
        for now in [1_179_648_u64, 1_179_648, 1_245_184, 1_179_648] {
            sum += reported.change_to(now);
            assert_eq!(sum, now as i64);
        }
        assert_eq!(reported.change_to(1_179_648), 0);
        sum += reported.withdraw();
        assert_eq!(sum, 0);
        assert_eq!(gauge_names(), ["memory_bytes"]);
    }

    #[test]
    fn a_vm_counts_once_however_many_root_contexts_it_runs() {
        let vm = VmShare::default();
        let mut sum: i64 = 0;
        assert_eq!(vm.change_to(1_179_648), 0, "no configured root context yet");
        // Two listeners' configurations, then a push: the old pair drains
        // while the new pair runs.
        for _ in 0..4 {
            vm.join();
            sum += vm.change_to(1_179_648);
            assert_eq!(sum, 1_179_648);
        }
        sum += vm.change_to(1_245_184);
        assert_eq!(sum, 1_245_184);
        for _ in 0..3 {
            sum += vm.leave();
            assert_eq!(sum, 1_245_184, "root contexts remain");
        }
        sum += vm.leave();
        assert_eq!(sum, 0, "the last one takes the share back");
        assert_eq!(vm.change_to(1_245_184), 0);
        assert_eq!(vm.leave(), 0, "an extra leave changes nothing");
    }

    #[test]
    fn every_counter_has_its_index_and_a_distinct_name() {
        let all: Vec<Counter> = Counter::all().collect();
        assert_eq!(all.len(), COUNT);
        for (i, counter) in all.iter().enumerate() {
            assert_eq!(counter.index(), i, "{counter:?}");
        }
        let mut names = names();
        assert!(names.iter().all(|n| !n.is_empty()));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), COUNT);
    }

    #[test]
    fn the_names_are_the_documented_ones() {
        assert_eq!(
            names(),
            [
                "rewritten",
                "rejected.body_too_large",
                "id_token_dropped",
                "response_passed",
                "held_without_body",
                "passed.same_client",
                "passed.unknown_azp",
                "passed.caller_not_allowed",
                "passed.realm_mismatch",
                "passed.not_decodable",
                "passed.duplicate_parameter",
                "passed.not_refresh_grant",
                "passed.no_token",
                "passed.upstream_not_allowed",
                "passed.signing_failed",
                "passed.ambiguous",
            ]
        );
    }

    #[test]
    fn a_reason_counts_whatever_its_detail() {
        assert_eq!(
            Counter::Passed(PassReason::Ambiguous("x")).index(),
            Counter::Passed(PassReason::Ambiguous("")).index()
        );
    }

    #[test]
    fn flush_hands_over_only_what_was_counted_and_starts_again() {
        let counts = Counts::default();
        counts.count(Counter::Rewritten);
        counts.count(Counter::Rewritten);
        counts.add(Counter::HeldWithoutBody, 3);
        counts.count(Counter::Passed(PassReason::NoToken));
        let mut handed = Vec::new();
        counts.flush(|index, n| handed.push((index, n)));
        assert_eq!(
            handed,
            [
                (Counter::Rewritten.index(), 2),
                (Counter::HeldWithoutBody.index(), 3),
                (Counter::Passed(PassReason::NoToken).index(), 1)
            ]
        );
        counts.flush(|_, _| panic!("nothing counted since"));
        counts.add(Counter::Rewritten, u64::MAX);
        counts.count(Counter::Rewritten);
        assert_eq!(counts.pending(Counter::Rewritten), u64::MAX);
    }
}
