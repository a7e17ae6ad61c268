//! A token request's decision where Envoy's access log can read it: one
//! property per token request, set when the request is counted.
//!
//! Envoy keeps a property a Wasm filter sets in the stream's filter state,
//! under `wasm.` and the property's name, as bytes:
//! `%FILTER_STATE(wasm.azp_bridge.decision:PLAIN)%` prints the value as it
//! was set (without `:PLAIN`, Envoy prints it as a base64 protobuf
//! `BytesValue`). Requests that are not token requests get no property (the
//! access log prints `-`) and cost nothing.
//!
//! The value is the request's counter name ([`crate::counters`]), and for a
//! rewrite the target client id: `rewritten client=<client id>`,
//! `passed.<reason>`, `rejected.body_too_large`. The client id is
//! configuration, shown as a log field ([`Redactor::field`]): printable, at
//! most [`crate::redact::SHOWN`] bytes, never a secret. The caller's id, the
//! token and the credentials are never part of it.

use crate::counters::Counter;
use crate::redact::Redactor;

/// The property's name (the filter state key is `wasm.` and this).
pub const PROPERTY: &str = "azp_bridge.decision";

/// The filter state key an access log names.
pub const FILTER_STATE_KEY: &str = "wasm.azp_bridge.decision";

/// The value for a token request counted as `counter`; `target` is the
/// client whose credentials a rewrite sent (ignored for anything else).
pub fn value(counter: Counter, target: Option<&str>, redactor: &Redactor) -> String {
    match (counter, target) {
        (Counter::Rewritten, Some(client)) => {
            format!("{} client={}", counter.name(), redactor.field(Some(client.as_bytes())))
        }
        _ => counter.name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PassReason;

    #[test]
    fn the_key_is_envoys_prefix_and_the_property() {
        assert_eq!(FILTER_STATE_KEY, format!("wasm.{PROPERTY}"));
    }

    #[test]
    fn a_rewrite_names_its_target_client() {
        let redactor = Redactor::new(["the-secret"]);
        assert_eq!(
            value(Counter::Rewritten, Some("spring-boot-admin-client"), &redactor),
            "rewritten client=spring-boot-admin-client"
        );
    }

    #[test]
    fn every_other_decision_is_its_counter_name_alone() {
        let redactor = Redactor::new(["the-secret"]);
        assert_eq!(
            value(Counter::RejectedBodyTooLarge, None, &redactor),
            "rejected.body_too_large"
        );
        for reason in PassReason::ALL {
            assert_eq!(
                value(Counter::Passed(reason), Some("admin"), &redactor),
                format!("passed.{}", reason.as_str())
            );
        }
        assert_eq!(
            value(Counter::Passed(PassReason::Ambiguous("a detail")), None, &redactor),
            "passed.ambiguous"
        );
    }

    /// A client id is configuration, but is shown as any log field is: one
    /// line, printable, short, and never a configured secret.
    #[test]
    fn the_client_id_is_a_log_field() {
        let redactor = Redactor::new(["the-secret"]);
        assert_eq!(
            value(Counter::Rewritten, Some("a b\nc"), &redactor),
            "rewritten client=a?b?c"
        );
        assert_eq!(
            value(Counter::Rewritten, Some("id-the-secret"), &redactor),
            "rewritten client=<redacted>"
        );
        assert_eq!(
            value(Counter::Rewritten, Some(&"x".repeat(70)), &redactor),
            format!("rewritten client={}...", "x".repeat(64))
        );
    }
}
