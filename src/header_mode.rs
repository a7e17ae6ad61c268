//! The header-mode rules, in one place: how a token request's and a bridged
//! response's headers change when their body does.
//!
//! A body that changes length needs its `Content-Length` changed too: a
//! stale one makes the upstream read a truncated body (silent corruption; a
//! shrunk body leaves garbage on a keep-alive connection). Headers can be
//! changed only until they leave, and in Envoy they leave when the headers
//! callback returns `Continue`. So there are two modes (`hold_headers`):
//!
//! - [`HeaderMode::Streamed`] (the default): headers leave at once, without
//!   their `Content-Length` (Envoy then sends the body chunked); nothing
//!   else about them can change later.
//! - [`HeaderMode::Held`]: headers wait for the body (Envoy needs
//!   `allow_on_headers_stop_iteration: true`, see [`crate::held`]); then the
//!   exact `Content-Length` is set, and `Authorization` changes as the
//!   rewrite says.

use crate::config::Config;
use crate::host::Flow;
use crate::policy::{AuthorizationChange, Inspection, Rewrite};
use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderMode {
    Streamed,
    Held,
}

/// One header change.
#[derive(Clone, PartialEq, Eq)]
pub enum HeaderEdit<'a> {
    Remove(&'static str),
    /// A value (an `Authorization` value is a credential: never log it).
    Set(&'static str, Cow<'a, str>),
}

impl fmt::Debug for HeaderEdit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderEdit::Remove(name) => write!(f, "Remove({name})"),
            HeaderEdit::Set(name, _) if *name == "authorization" => write!(f, "Set({name}, <redacted>)"),
            HeaderEdit::Set(name, value) => write!(f, "Set({name}, {value})"),
        }
    }
}

impl HeaderEdit<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            HeaderEdit::Remove(name) | HeaderEdit::Set(name, _) => name,
        }
    }

    pub fn value(&self) -> Option<&str> {
        match self {
            HeaderEdit::Remove(_) => None,
            HeaderEdit::Set(_, value) => Some(value),
        }
    }
}

const CONTENT_LENGTH: &str = "content-length";
const AUTHORIZATION: &str = "authorization";

impl HeaderMode {
    pub fn of(config: &Config) -> Self {
        if config.hold_headers {
            HeaderMode::Held
        } else {
            HeaderMode::Streamed
        }
    }

    /// The request headers of a token request whose body is to be read.
    pub fn request_head(self) -> (Flow, Option<HeaderEdit<'static>>) {
        match self {
            // Headers leave now; the body may change length later.
            HeaderMode::Streamed => (Flow::Continue, Some(HeaderEdit::Remove(CONTENT_LENGTH))),
            // Envoy calls the body callback of a paused filter only with
            // allow_on_headers_stop_iteration; the tick reports a body that never comes.
            HeaderMode::Held => (Flow::Pause, None),
        }
    }

    /// The request headers once the body is rewritten: in held mode the
    /// exact `Content-Length` (only if the request declared one: a chunked
    /// request stays chunked), then `Authorization` as the rewrite says.
    /// Streamed headers are gone; the policy asks no `Authorization` change
    /// then (configuration refuses `client_secret_basic` without held
    /// headers, and the caller's header is kept).
    pub fn rewritten_request<'a>(self, inspection: &Inspection, rewrite: &'a Rewrite) -> [Option<HeaderEdit<'a>>; 2] {
        match self {
            HeaderMode::Streamed => [None, None],
            HeaderMode::Held => [
                inspection
                    .has_content_length
                    .then(|| HeaderEdit::Set(CONTENT_LENGTH, Cow::Owned(rewrite.body.len().to_string()))),
                match &rewrite.authorization {
                    AuthorizationChange::Keep => None,
                    AuthorizationChange::Remove => Some(HeaderEdit::Remove(AUTHORIZATION)),
                    AuthorizationChange::Set(value) => Some(HeaderEdit::Set(AUTHORIZATION, Cow::Borrowed(value))),
                },
            ],
        }
    }

    /// The headers of a bridged 2xx response with a body (its `id_token`
    /// may go, which shortens it).
    pub fn response_head(self) -> (Flow, Option<HeaderEdit<'static>>) {
        match self {
            // Headers leave now; the body will be shorter.
            HeaderMode::Streamed => (Flow::Continue, Some(HeaderEdit::Remove(CONTENT_LENGTH))),
            // Held until the body is known: then the exact Content-Length.
            HeaderMode::Held => (Flow::Pause, None),
        }
    }

    /// The response headers once the body lost its `id_token`.
    pub fn rewritten_response(self, new_len: usize) -> Option<HeaderEdit<'static>> {
        match self {
            HeaderMode::Streamed => None,
            HeaderMode::Held => Some(HeaderEdit::Set(CONTENT_LENGTH, Cow::Owned(new_len.to_string()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{Endpoint, Target};
    use crate::policy::CallerHeader;

    fn inspection(has_content_length: bool) -> Inspection {
        Inspection {
            target: Target {
                endpoint: Endpoint::Token,
                realm: "demo".to_owned(),
            },
            caller: CallerHeader::None,
            has_content_length,
        }
    }

    fn rewrite(authorization: AuthorizationChange) -> Rewrite {
        Rewrite {
            body: b"0123456789".to_vec(),
            authorization,
            drop_id_token: false,
        }
    }

    #[test]
    fn streamed_headers_leave_at_once_without_content_length() {
        let mode = HeaderMode::Streamed;
        assert_eq!(
            mode.request_head(),
            (Flow::Continue, Some(HeaderEdit::Remove("content-length")))
        );
        assert_eq!(
            mode.response_head(),
            (Flow::Continue, Some(HeaderEdit::Remove("content-length")))
        );
        let r = rewrite(AuthorizationChange::Keep);
        assert_eq!(mode.rewritten_request(&inspection(true), &r), [None, None]);
        assert_eq!(mode.rewritten_response(3), None);
    }

    #[test]
    fn held_headers_wait_and_get_the_exact_length_and_authorization() {
        let mode = HeaderMode::Held;
        assert_eq!(mode.request_head(), (Flow::Pause, None));
        assert_eq!(mode.response_head(), (Flow::Pause, None));
        assert_eq!(
            mode.rewritten_response(42),
            Some(HeaderEdit::Set("content-length", "42".into()))
        );
        let keep = rewrite(AuthorizationChange::Keep);
        assert_eq!(
            mode.rewritten_request(&inspection(true), &keep),
            [Some(HeaderEdit::Set("content-length", "10".into())), None]
        );
        // A request without Content-Length (chunked) gets none.
        assert_eq!(mode.rewritten_request(&inspection(false), &keep), [None, None]);
        let remove = rewrite(AuthorizationChange::Remove);
        assert_eq!(
            mode.rewritten_request(&inspection(false), &remove),
            [None, Some(HeaderEdit::Remove("authorization"))]
        );
        let set = rewrite(AuthorizationChange::Set("Basic YTpi".to_owned()));
        let edits = mode.rewritten_request(&inspection(true), &set);
        assert_eq!(
            edits,
            [
                Some(HeaderEdit::Set("content-length", "10".into())),
                Some(HeaderEdit::Set("authorization", "Basic YTpi".into()))
            ]
        );
        assert!(!format!("{edits:?}").contains("YTpi"), "{edits:?}");
    }
}
