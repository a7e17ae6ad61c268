//! One HTTP stream through the filter: the request and response state
//! machines. The shell forwards each proxy-wasm callback here with its
//! [`Host`]; everything the stream decides (what to read, which header and
//! body edits to make, what to count and log, whether Envoy waits) is here,
//! and tested natively against [`crate::host::fake::FakeHost`].
//!
//! Request: headers → [`policy::plan`]; a token request's body is buffered
//! (up to `max_body_bytes`, else 413) and at its end (or at the trailers)
//! [`policy::decide_with`] decides; a rewrite replaces the body and makes the
//! header edits of [`HeaderMode`]. Response: only that of a bridged refresh
//! whose `id_token` is to go is read ([`crate::response`]); every other
//! response streams untouched.

use crate::access_log;
use crate::counters::Counter;
use crate::header_mode::{HeaderEdit, HeaderMode};
use crate::host::{self, Flow, Host};
use crate::plugin::Plugin;
use crate::policy::{self, Fresh, HeadPlan, Inspection, Outcome, PassReason, RequestHeaders, Verdict};
use crate::response::{self, ResponseEdit};
use log::{debug, error, warn};
use std::rc::Rc;

enum RequestState {
    /// Not (or no longer) the filter's business.
    Passing,
    /// A token request whose body is being buffered.
    Buffering { inspection: Inspection, body_size: usize },
}

/// The response of a bridged refresh whose `id_token` is to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseState {
    Untouched,
    /// The request was bridged: look at the response headers.
    Expected,
    /// A 2xx response, its body being buffered (this many bytes so far).
    Buffering {
        body_size: usize,
    },
}

pub struct Stream {
    /// `None` without a configuration: then every request just passes.
    plugin: Option<Rc<Plugin>>,
    /// Envoy's HTTP context id (the key of the held request).
    context_id: u32,
    request: RequestState,
    response: ResponseState,
    /// Paused in the headers callback and registered in the plugin's held requests.
    held: bool,
    /// Envoy's `x-request-id`, read with the headers, for the decision line.
    request_id: Option<Vec<u8>>,
}

/// Envoy deletes the context when the stream ends, whether or not the body came.
impl Drop for Stream {
    fn drop(&mut self) {
        self.release_held();
    }
}

impl Stream {
    pub fn new(plugin: Option<Rc<Plugin>>, context_id: u32) -> Self {
        Stream {
            plugin,
            context_id,
            request: RequestState::Passing,
            response: ResponseState::Untouched,
            held: false,
            request_id: None,
        }
    }

    pub fn on_request_headers<H: Host>(&mut self, host: &mut H, end_of_stream: bool) -> Flow {
        // A request without a body has no credentials to swap.
        let (false, Some(plugin)) = (end_of_stream, self.plugin.clone()) else {
            return Flow::Continue;
        };
        let headers = host.request_headers();
        let plan = policy::plan(&plugin.config, &headers);
        if !matches!(plan, HeadPlan::Ignore) {
            // For the decision line: headers cannot be read later. Only
            // what a log field reads of it is kept.
            self.request_id = headers
                .get("x-request-id")
                .map(|id| plugin.config.redactor.keep(id).to_vec());
        }
        match plan {
            HeadPlan::Ignore => Flow::Continue,
            HeadPlan::Pass(target, reason) => {
                let verdict = Verdict::pass(reason, None, None);
                plugin.warn_throttled(host, || {
                    format!(
                        "azp-bridge: {} request_id={}",
                        verdict.describe(&plugin.config, &target),
                        plugin.config.redactor.field(self.request_id.as_deref())
                    )
                });
                record_decision(&plugin, host, Counter::Passed(reason), None);
                Flow::Continue
            }
            HeadPlan::RejectTooLarge => self.reject_too_large(&plugin, host),
            HeadPlan::Inspect(inspection) => {
                self.request = RequestState::Buffering {
                    inspection,
                    body_size: 0,
                };
                let mode = HeaderMode::of(&plugin.config);
                if mode == HeaderMode::Held {
                    let id = self.context_id;
                    plugin.with_held(|held| held.hold(id, host::now_ms(host)));
                    self.held = true;
                }
                let (flow, edit) = mode.request_head();
                if let Some(edit) = edit {
                    set_request_header(host, &edit);
                }
                flow
            }
        }
    }

    pub fn on_request_body<H: Host>(&mut self, host: &mut H, body_size: usize, end_of_stream: bool) -> Flow {
        self.release_held();
        let (RequestState::Buffering { body_size: seen, .. }, Some(plugin)) = (&mut self.request, self.plugin.clone())
        else {
            return Flow::Continue;
        };
        *seen = body_size;
        if body_size > plugin.config.max_body_bytes {
            return self.reject_too_large(&plugin, host);
        }
        if !end_of_stream {
            return Flow::Pause;
        }
        self.finish_request(&plugin, host);
        Flow::Continue
    }

    pub fn on_request_trailers<H: Host>(&mut self, host: &mut H) -> Flow {
        self.release_held();
        // With trailers, the body callback never sees the end of the stream.
        if let Some(plugin) = self.plugin.clone() {
            self.finish_request(&plugin, host);
        }
        Flow::Continue
    }

    pub fn on_response_headers<H: Host>(&mut self, host: &mut H, end_of_stream: bool) -> Flow {
        let (ResponseState::Expected, Some(plugin)) = (self.response, self.plugin.clone()) else {
            return Flow::Continue;
        };
        let status = host.response_status();
        let success = status.is_some_and(|s| s.len() == 3 && s.first() == Some(&b'2'));
        if !success || end_of_stream {
            // Keycloak's errors, and answers without a body, go as they are.
            return self.pass_response(&plugin, if success { "no body" } else { "not 2xx" });
        }
        self.response = ResponseState::Buffering { body_size: 0 };
        let (flow, edit) = HeaderMode::of(&plugin.config).response_head();
        if let Some(edit) = edit {
            set_response_header(host, &edit);
        }
        flow
    }

    pub fn on_response_body<H: Host>(&mut self, host: &mut H, body_size: usize, end_of_stream: bool) -> Flow {
        let (ResponseState::Buffering { .. }, Some(plugin)) = (self.response, self.plugin.clone()) else {
            return Flow::Continue;
        };
        self.response = ResponseState::Buffering { body_size };
        if body_size > plugin.config.max_response_bytes {
            // What Envoy holds so far, and the rest, go as they are.
            return self.pass_response(&plugin, "over max_response_bytes");
        }
        if !end_of_stream {
            return Flow::Pause;
        }
        self.finish_response(&plugin, host, body_size);
        Flow::Continue
    }

    pub fn on_response_trailers<H: Host>(&mut self, host: &mut H) -> Flow {
        // With trailers, the body callback never sees the end of the stream.
        if let (ResponseState::Buffering { body_size }, Some(plugin)) = (self.response, self.plugin.clone()) {
            self.finish_response(&plugin, host, body_size);
        }
        Flow::Continue
    }

    /// The request is no longer waiting for its body (it came, or the stream ended).
    fn release_held(&mut self) {
        if std::mem::take(&mut self.held) {
            if let Some(plugin) = &self.plugin {
                let id = self.context_id;
                plugin.with_held(|held| held.release(id));
            }
        }
    }

    /// The answer to a token request over `max_body_bytes`: 413, with a
    /// JSON error Keycloak's clients read, never cached.
    fn reject_too_large<H: Host>(&mut self, plugin: &Plugin, host: &mut H) -> Flow {
        self.request = RequestState::Passing;
        // The 413 is the filter acting on a request, as a rewrite is: only
        // for one Envoy routed to Keycloak (the cluster is read only now).
        if !policy::cluster_is_keycloak(&plugin.config.upstream, &|| host.routed_cluster()) {
            record_decision(plugin, host, Counter::Passed(PassReason::UpstreamNotAllowed), None);
            debug!("azp-bridge: a token request over max_body_bytes routed elsewhere, passed");
            return Flow::Continue;
        }
        record_decision(plugin, host, Counter::RejectedBodyTooLarge, None);
        plugin.warn_throttled(host, || {
            format!(
                "azp-bridge: token request body over max_body_bytes ({}), answered 413 request_id={}",
                plugin.config.max_body_bytes,
                plugin.config.redactor.field(self.request_id.as_deref())
            )
        });
        let body = policy::too_large_body(&plugin.config);
        let headers = [("content-type", "application/json"), ("cache-control", "no-store")];
        if host.send_response(413, &headers, body.as_bytes()).is_err() {
            error!("azp-bridge: could not send the 413 answer");
        }
        Flow::Pause
    }

    /// Decides on the buffered body and applies the verdict.
    fn finish_request<H: Host>(&mut self, plugin: &Plugin, host: &mut H) {
        let RequestState::Buffering { inspection, body_size } =
            std::mem::replace(&mut self.request, RequestState::Passing)
        else {
            return;
        };
        // The body must be read whole: it is replaced as (0, its full length).
        let body = host.request_body(body_size);
        if body.len() != body_size {
            warn!("azp-bridge: request body unreadable, forwarded unchanged");
            return;
        }
        let decided = policy::decide_with(&plugin.config, &inspection, &body, &|| fresh(host));
        let verdict = policy::confirm_destination(&plugin.config, decided, &|| host.routed_cluster());
        let line = || {
            format!(
                "azp-bridge: {} request_id={}",
                verdict.describe(&plugin.config, &inspection.target),
                plugin.config.redactor.field(self.request_id.as_deref())
            )
        };
        // Anyone can send an ambiguous or undecodable request, a forged
        // token that makes the filter sign, or one routed elsewhere (a
        // warning, as when the authority already says so): none may flood
        // the warning log. A malformed token is only a debug line.
        match &verdict.outcome {
            Outcome::Pass(PassReason::Ambiguous(_) | PassReason::SigningFailed | PassReason::UpstreamNotAllowed) => {
                plugin.warn_throttled(host, line);
            }
            _ if log::log_enabled!(log::Level::Debug) => debug!("{}", line()),
            _ => {}
        }
        match verdict.outcome {
            Outcome::Pass(reason) => record_decision(plugin, host, Counter::Passed(reason), None),
            Outcome::Rewrite(rewrite) => {
                if host.set_request_body(body.len(), &rewrite.body).is_err() {
                    error!("azp-bridge: could not replace the request body; forwarded unchanged");
                    return;
                }
                let edits = HeaderMode::of(&plugin.config).rewritten_request(&inspection, &rewrite);
                for edit in edits.iter().flatten() {
                    set_request_header(host, edit);
                }
                record_decision(plugin, host, Counter::Rewritten, verdict.azp.as_deref());
                if rewrite.drop_id_token {
                    self.response = ResponseState::Expected;
                }
            }
        }
    }

    /// The response goes to the client as Keycloak sent it.
    fn pass_response(&mut self, plugin: &Plugin, why: &str) -> Flow {
        self.response = ResponseState::Untouched;
        debug!("azp-bridge: bridged response passed unchanged ({why})");
        plugin.count(Counter::ResponsePassed);
        Flow::Continue
    }

    /// The whole body of a bridged 2xx response: without its `id_token`.
    fn finish_response<H: Host>(&mut self, plugin: &Plugin, host: &mut H, body_size: usize) {
        self.response = ResponseState::Untouched;
        let body = host.response_body(body_size);
        if body.len() != body_size {
            self.pass_response(plugin, "body unreadable");
            return;
        }
        let new_body = match response::drop_id_token(&body) {
            ResponseEdit::DropIdToken(new_body) => new_body,
            ResponseEdit::Pass(why) => {
                self.pass_response(plugin, why);
                return;
            }
        };
        if host.set_response_body(body.len(), &new_body).is_err() {
            error!("azp-bridge: could not replace the response body; forwarded unchanged");
            self.pass_response(plugin, "body not replaceable");
            return;
        }
        if let Some(edit) = HeaderMode::of(&plugin.config).rewritten_response(new_body.len()) {
            set_response_header(host, &edit);
        }
        plugin.count(Counter::IdTokenDropped);
    }
}

/// A token request's outcome: counted, and set where the access log reads
/// it ([`access_log`]), one host call. The target is the client whose
/// credentials a rewrite sent.
fn record_decision<H: Host>(plugin: &Plugin, host: &mut H, counter: Counter, target: Option<&str>) {
    plugin.count(counter);
    let value = access_log::value(counter, target, &plugin.config.redactor);
    if host.set_property(access_log::PROPERTY, value.as_bytes()).is_err() {
        debug!("azp-bridge: the decision could not be set for the access log");
    }
}

/// The host's clock and 128 random bits, for a signed client assertion;
/// `None` if the host gives either not.
fn fresh<H: Host>(host: &H) -> Option<Fresh> {
    let now_seconds = host.now()?.as_secs();
    let mut jti = [0u8; 16];
    host.random(&mut jti).ok()?;
    Some(Fresh { now_seconds, jti })
}

fn set_request_header<H: Host>(host: &mut H, edit: &HeaderEdit<'_>) {
    if host.set_request_header(edit.name(), edit.value()).is_err() {
        warn!("azp-bridge: could not change request header {}", edit.name());
    }
}

fn set_response_header<H: Host>(host: &mut H, edit: &HeaderEdit<'_>) {
    if host.set_response_header(edit.name(), edit.value()).is_err() {
        warn!("azp-bridge: could not change response header {}", edit.name());
    }
}

#[cfg(test)]
mod tests;
