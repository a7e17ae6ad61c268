//! The token response of a bridged refresh, without its `id_token`.
//!
//! Keycloak issues the new ID token to the client whose credentials the
//! filter sent, so its `aud` is the confidential client, and a compliant
//! public client rejects the whole response. OpenID Connect Core 1.0,
//! section 12.2: a refresh response "might not contain an id_token"; so the
//! member goes, and every other member keeps its value and its bytes.

use crate::json_members::Members;
use std::collections::BTreeSet;

/// What becomes of a bridged token response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseEdit {
    /// The body without its `id_token` member.
    DropIdToken(Vec<u8>),
    /// Forwarded as it is, for this reason (counted `response_passed`).
    Pass(&'static str),
}

/// The body of a 2xx token response with its `id_token` member removed.
/// Anything but one JSON object whose member names are all different passes.
pub fn drop_id_token(body: &[u8]) -> ResponseEdit {
    let Ok(members) = serde_json::from_slice::<Members<'_>>(body) else {
        return ResponseEdit::Pass("not a JSON object");
    };
    let Members(members) = members;
    let mut names = BTreeSet::new();
    if !members.iter().all(|(name, _)| names.insert(name)) {
        return ResponseEdit::Pass("a member is repeated");
    }
    if !members.iter().any(|(name, _)| name == "id_token") {
        return ResponseEdit::Pass("no id_token");
    }
    let mut out = Vec::with_capacity(body.len());
    out.push(b'{');
    for (name, value) in members.iter().filter(|(name, _)| name != "id_token") {
        if out.len() > 1 {
            out.push(b',');
        }
        // A name re-encoded by serde_json; the value's bytes as received.
        if serde_json::to_writer(&mut out, name.as_ref()).is_err() {
            return ResponseEdit::Pass("a member name could not be written");
        }
        out.push(b':');
        out.extend_from_slice(value.get().as_bytes());
    }
    out.push(b'}');
    ResponseEdit::DropIdToken(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dropped(body: &str) -> String {
        match drop_id_token(body.as_bytes()) {
            ResponseEdit::DropIdToken(out) => String::from_utf8(out).unwrap(),
            other => panic!("expected a drop, got {other:?}"),
        }
    }

    #[test]
    fn removes_id_token_and_keeps_every_other_member_byte_for_byte() {
        let body = r#"{"access_token":"a.b.c","expires_in":300,"refresh_expires_in":1800,"refresh_token":"d.e.f","token_type":"Bearer","id_token":"g.h.i","not-before-policy":0,"session_state":"s","scope":"openid profile"}"#;
        assert_eq!(
            dropped(body),
            r#"{"access_token":"a.b.c","expires_in":300,"refresh_expires_in":1800,"refresh_token":"d.e.f","token_type":"Bearer","not-before-policy":0,"session_state":"s","scope":"openid profile"}"#
        );
    }

    #[test]
    fn values_keep_their_exact_bytes() {
        let body = "{\"n\": 1.50e+2 ,\"s\":\"\\u0041\\/\",\"o\":{ \"k\" : [1, 2] },\"id_token\":\"x\"}";
        assert_eq!(
            dropped(body),
            "{\"n\":1.50e+2,\"s\":\"\\u0041\\/\",\"o\":{ \"k\" : [1, 2] }}"
        );
    }

    #[test]
    fn an_id_token_of_any_type_goes() {
        assert_eq!(dropped(r#"{"id_token":{"x":1},"a":1}"#), r#"{"a":1}"#);
        assert_eq!(dropped(r#"{"id_token":null}"#), "{}");
        assert_eq!(dropped(r#"{"a":1,"id_token":7}"#), r#"{"a":1}"#);
    }

    #[test]
    fn what_is_not_one_object_of_distinct_members_passes() {
        for (body, why) in [
            ("", "not a JSON object"),
            ("not json", "not a JSON object"),
            ("[]", "not a JSON object"),
            (r#"{"a":1} trailing"#, "not a JSON object"),
            (r#"{"id_token":"x""#, "not a JSON object"),
            (r#"{"id_token":"x","id_token":"y"}"#, "a member is repeated"),
            (r#"{"a":1,"a":2,"id_token":"x"}"#, "a member is repeated"),
            (r#"{"access_token":"a"}"#, "no id_token"),
            ("{}", "no id_token"),
        ] {
            assert_eq!(drop_id_token(body.as_bytes()), ResponseEdit::Pass(why), "{body}");
        }
    }

    #[test]
    fn escaped_names_are_compared_decoded() {
        assert_eq!(dropped(r#"{"id\u005ftoken":"x","b":2}"#), r#"{"b":2}"#);
    }
}
