//! At most one warning per period: warnings caused by unauthenticated input
//! (an ambiguous request, a token request routed elsewhere) must not let
//! anyone flood the warning log. The rest go to the debug level.

/// One warning per this many milliseconds, per worker.
pub const WARN_EVERY_MS: u64 = 60_000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    last_ms: Option<u64>,
}

impl Throttle {
    /// Whether a warning may be logged at `now_ms` (and if so, records it).
    pub fn allow(&mut self, now_ms: u64) -> bool {
        let allowed = self
            .last_ms
            .is_none_or(|last| now_ms < last || now_ms - last >= WARN_EVERY_MS);
        if allowed {
            self.last_ms = Some(now_ms);
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_period() {
        let mut throttle = Throttle::default();
        assert!(throttle.allow(1_000));
        assert!(!throttle.allow(1_001));
        assert!(!throttle.allow(60_999));
        assert!(throttle.allow(61_000));
        assert!(!throttle.allow(61_000));
        // A clock that went backwards does not silence warnings for good.
        assert!(throttle.allow(5));
    }
}
