//! Held token requests whose body never arrives.
//!
//! With `"hold_headers": true` the filter pauses a token request in the
//! headers callback until its body is read. Envoy calls the body callback of
//! a paused filter only when the wasm filter's `allow_on_headers_stop_iteration`
//! is true; without it the request hangs, silently, until the stream idle
//! timeout (504 after 300 s by default). The module cannot read that setting
//! (Envoy exposes no such property), so it watches for the symptom instead:
//! each worker records when it paused a request, forgets it when the body (or
//! the end of the stream) arrives, and the root context's tick reports
//! requests held longer than [`STUCK_AFTER_MS`].

/// How long a held request may wait for its body before it counts as stuck.
/// Real clients send a refresh's body with its headers.
pub const STUCK_AFTER_MS: u64 = 5_000;

/// At most this many held requests are tracked per worker; a request beyond
/// it is not tracked (the ones already tracked report the problem).
const MAX_TRACKED: usize = 4096;

/// The held requests of one worker (one filter configuration's root context).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Held {
    /// (HTTP context id, paused at in ms).
    waiting: Vec<(u32, u64)>,
    reported: bool,
}

/// What a tick found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stuck {
    /// Requests that became stuck since the last tick (each counted once).
    pub newly_stuck: u64,
    /// Whether this is the first stuck request of this worker: log it (once).
    pub first: bool,
}

impl Held {
    /// The headers callback paused request `id` at `now_ms`.
    pub fn hold(&mut self, id: u32, now_ms: u64) {
        if self.waiting.len() < MAX_TRACKED && !self.waiting.iter().any(|(i, _)| *i == id) {
            self.waiting.push((id, now_ms));
        }
    }

    /// Request `id` got its body, or ended: it is no longer waiting.
    pub fn release(&mut self, id: u32) {
        self.waiting.retain(|(i, _)| *i != id);
    }

    /// How many requests are waiting for their body.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Called on each tick: requests waiting longer than [`STUCK_AFTER_MS`]
    /// are reported once and no longer tracked.
    pub fn check(&mut self, now_ms: u64) -> Stuck {
        let before = self.waiting.len();
        self.waiting
            .retain(|(_, since)| now_ms.saturating_sub(*since) <= STUCK_AFTER_MS);
        let newly_stuck = (before - self.waiting.len()) as u64;
        let first = newly_stuck > 0 && !self.reported;
        self.reported |= newly_stuck > 0;
        Stuck { newly_stuck, first }
    }
}

/// The error line for the first stuck request of a worker.
pub fn stuck_message() -> String {
    format!(
        "azp-bridge: a token request held for its body got none within {} s: \"hold_headers\": true needs \
         allow_on_headers_stop_iteration: true in the wasm filter's configuration (Envoy >= 1.35); without it \
         every token request hangs until the stream idle timeout (504, downstream_rq_idle_timeout). \
         Counted as azp_bridge.held_without_body; logged once per worker",
        STUCK_AFTER_MS / 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_whose_body_arrives_is_never_stuck() {
        let mut held = Held::default();
        held.hold(1, 1_000);
        held.release(1);
        assert_eq!(held.check(60_000), Stuck::default());
        assert_eq!(held.waiting(), 0);
    }

    #[test]
    fn a_request_held_too_long_is_reported_once_and_only_the_first_is_logged() {
        let mut held = Held::default();
        held.hold(1, 1_000);
        held.hold(2, 3_000);
        held.hold(2, 3_500); // the same request again: still one
        assert_eq!(held.check(6_000), Stuck::default(), "5 s is not yet stuck");
        assert_eq!(
            held.check(6_001),
            Stuck {
                newly_stuck: 1,
                first: true
            }
        );
        assert_eq!(held.check(6_500), Stuck::default(), "counted once");
        held.hold(3, 7_000);
        assert_eq!(
            held.check(20_000),
            Stuck {
                newly_stuck: 2,
                first: false
            },
            "logged once per worker"
        );
        // A request that ended after being counted changes nothing.
        held.release(1);
        assert_eq!(held.waiting(), 0);
    }

    #[test]
    fn a_clock_going_backwards_is_not_stuck() {
        let mut held = Held::default();
        held.hold(1, 10_000);
        assert_eq!(held.check(1_000), Stuck::default());
        assert_eq!(held.waiting(), 1);
    }

    #[test]
    fn tracking_is_bounded() {
        let mut held = Held::default();
        for id in 0..(MAX_TRACKED as u32 + 10) {
            held.hold(id, 0);
        }
        assert_eq!(held.waiting(), MAX_TRACKED);
        assert_eq!(held.check(STUCK_AFTER_MS + 1).newly_stuck, MAX_TRACKED as u64);
    }

    #[test]
    fn the_message_names_the_setting_and_the_counter() {
        let message = stuck_message();
        assert!(message.contains("allow_on_headers_stop_iteration: true"), "{message}");
        assert!(message.contains("azp_bridge.held_without_body"), "{message}");
        assert!(message.contains("within 5 s"), "{message}");
    }
}
