//! The proxy-wasm shell: carries headers and body bytes between Envoy and
//! [`crate::policy`], and applies its verdict. No decision is made here.
//!
//! Host calls go through `proxy_wasm::hostcalls`, whose `Result`s are handled,
//! rather than the trait helpers, which unwrap.

use crate::config::{self, Config};
use crate::held::{self, Held};
use crate::policy::{
    self, AuthorizationChange, Fresh, HeadPlan, HeaderPairs, Inspection, Outcome, PassReason, RequestHeaders, Verdict,
};
use crate::response::{self, ResponseEdit};
use crate::throttle::Throttle;
use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

proxy_wasm::main! {{
    // Envoy filters by its own `wasm` log level; let everything through to it.
    proxy_wasm::set_log_level(LogLevel::Trace);
    // Replaces the SDK's hook (which unwraps): a panic is logged, never its data.
    std::panic::set_hook(Box::new(|info| {
        let place = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let _ = hostcalls::log(LogLevel::Critical, &format!("azp-bridge panicked at {place}; the VM is now unusable"));
    }));
    proxy_wasm::set_root_context(|_| Box::<BridgeRoot>::default());
}}

/// The filter's counters (Envoy shows them as `wasmcustom.azp_bridge.*`).
/// Requests count into the VM's memory; `flush` hands the counts to Envoy
/// once a second (on the root context's tick), which saves a host call per
/// request: the counters lag by at most a second.
struct Metrics {
    rewritten: Counter,
    rejected_body_too_large: Counter,
    id_token_dropped: Counter,
    response_passed: Counter,
    /// Held requests whose body never came (`src/held.rs`).
    held_without_body: Counter,
    passed: Vec<(&'static str, Counter)>,
}

struct Counter {
    id: u32,
    pending: Cell<u64>,
}

impl Counter {
    fn define(name: &str) -> Option<Counter> {
        let id = hostcalls::define_metric(MetricType::Counter, &format!("azp_bridge.{name}")).ok()?;
        Some(Counter {
            id,
            pending: Cell::new(0),
        })
    }

    fn count(&self) {
        self.add(1);
    }

    fn add(&self, n: u64) {
        self.pending.set(self.pending.get().saturating_add(n));
    }

    fn flush(&self) {
        let pending = self.pending.replace(0);
        if pending > 0 {
            let _ = hostcalls::increment_metric(self.id, i64::try_from(pending).unwrap_or(i64::MAX));
        }
    }
}

impl Metrics {
    fn define() -> Option<Metrics> {
        let passed = PassReason::ALL
            .iter()
            .map(|reason| {
                Some((
                    reason.as_str(),
                    Counter::define(&format!("passed.{}", reason.as_str()))?,
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Metrics {
            rewritten: Counter::define("rewritten")?,
            rejected_body_too_large: Counter::define("rejected.body_too_large")?,
            id_token_dropped: Counter::define("id_token_dropped")?,
            response_passed: Counter::define("response_passed")?,
            held_without_body: Counter::define("held_without_body")?,
            passed,
        })
    }

    fn count_pass(&self, reason: PassReason) {
        if let Some((_, counter)) = self.passed.iter().find(|(name, _)| *name == reason.as_str()) {
            counter.count();
        }
    }

    fn flush(&self) {
        self.rewritten.flush();
        self.rejected_body_too_large.flush();
        self.id_token_dropped.flush();
        self.response_passed.flush();
        self.held_without_body.flush();
        for (_, counter) in &self.passed {
            counter.flush();
        }
    }
}

/// What every request of one filter configuration shares.
struct Shared {
    config: Config,
    metrics: Option<Metrics>,
    /// This worker's held requests still waiting for their body.
    held: Cell<Held>,
    /// Warnings caused by request input: at most one a minute.
    warnings: Cell<Throttle>,
}

impl Shared {
    fn with_held<R>(&self, f: impl FnOnce(&mut Held) -> R) -> R {
        let mut held = self.held.take();
        let result = f(&mut held);
        self.held.set(held);
        result
    }

    /// A line about a request (request input decides whether it is
    /// written): a warning at most once a minute, else a debug line. The
    /// line is only made when it will be written.
    fn warn_throttled(&self, line: impl FnOnce() -> String) {
        let mut warnings = self.warnings.get();
        let allowed = warnings.allow(now_ms());
        self.warnings.set(warnings);
        if allowed {
            warn!(
                "{} (at most one such warning a minute per worker; the others at debug level)",
                line()
            );
        } else if log::log_enabled!(log::Level::Debug) {
            debug!("{}", line());
        }
    }
}

#[derive(Default)]
struct BridgeRoot {
    shared: Option<Rc<Shared>>,
}

impl Context for BridgeRoot {
    /// The plugin is going away (a new configuration, or shutdown): hand over
    /// the counts of the last second rather than lose them.
    fn on_done(&mut self) -> bool {
        self.flush_counters();
        true
    }
}

impl BridgeRoot {
    fn flush_counters(&self) {
        if let Some(metrics) = self.shared.as_ref().and_then(|s| s.metrics.as_ref()) {
            metrics.flush();
        }
    }
}

impl RootContext for BridgeRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        follow_host_log_level();
        // The tick flushes the counters and follows Envoy's log level, which
        // can change at run time (admin /logging).
        let _ = hostcalls::set_tick_period(Duration::from_secs(1));
        let raw = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(Some(raw)) => raw,
            _ => Vec::new(),
        };
        match config::parse(&raw, &|name| std::env::var(name).ok()) {
            Ok(config) => {
                // Which build runs (scripts/build-wasm.sh sets the commit); never a client id.
                info!(
                    "azp-bridge {} ({}) configured: {} client(s), hold_headers={}, max_body_bytes={}",
                    env!("CARGO_PKG_VERSION"),
                    option_env!("AZP_BRIDGE_COMMIT").unwrap_or("unknown"),
                    config.clients.len(),
                    config.hold_headers,
                    config.max_body_bytes
                );
                if config.hold_headers {
                    // The module cannot read the setting; on_tick reports its absence.
                    info!(
                        "azp-bridge: hold_headers=true: the wasm filter must set allow_on_headers_stop_iteration: true; \
                         a held token request that gets no body within {} s is logged as an error and counted held_without_body",
                        held::STUCK_AFTER_MS / 1000
                    );
                }
                if let Some(warning) = config.buffer_limit_warning() {
                    warn!("azp-bridge: {warning}");
                }
                let metrics = Metrics::define();
                if metrics.is_none() {
                    warn!("azp-bridge: counters could not be defined; running without them");
                }
                self.shared = Some(Rc::new(Shared {
                    config,
                    metrics,
                    held: Cell::new(Held::default()),
                    warnings: Cell::new(Throttle::default()),
                }));
                true
            }
            Err(e) => {
                error!("azp-bridge: {e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        follow_host_log_level();
        self.report_stuck_requests();
        self.flush_counters();
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // The SDK traps on None: without a configuration, requests just pass.
        Some(Box::new(BridgeRequest {
            shared: self.shared.clone(),
            state: State::Passing,
            response: ResponseState::Untouched,
            context_id,
            held: false,
            request_id: None,
        }))
    }
}

enum State {
    /// Not (or no longer) the filter's business.
    Passing,
    /// A token request whose body is being buffered.
    Buffering { inspection: Inspection, body_size: usize },
}

struct BridgeRequest {
    shared: Option<Rc<Shared>>,
    state: State,
    response: ResponseState,
    context_id: u32,
    /// Paused in the headers callback and registered in `Shared::held`.
    held: bool,
    /// Envoy's `x-request-id`, read with the headers, for the decision line.
    request_id: Option<Vec<u8>>,
}

/// The response of a bridged refresh whose `id_token` is to go
/// (crate::response); every other response streams untouched.
#[derive(PartialEq, Eq)]
enum ResponseState {
    Untouched,
    /// The request was bridged: look at the response headers.
    Expected,
    /// A 2xx response, its body being buffered (this many bytes so far).
    Buffering {
        body_size: usize,
    },
}

/// The request headers, all in one host call (the policy reads several, and
/// counts repeated ones). In the request headers callback the host always
/// has them; the SDK returns names as `String` (Envoy allows only token
/// characters in names) and values as bytes.
fn request_headers() -> HeaderPairs {
    HeaderPairs(hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default())
}

impl Context for BridgeRequest {}

/// Envoy deletes the context when the stream ends, whether or not the body came.
impl Drop for BridgeRequest {
    fn drop(&mut self) {
        self.release_held();
    }
}

impl HttpContext for BridgeRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "test-trap")]
        trap_if_asked();
        // A request without a body has no credentials to swap.
        let (false, Some(shared)) = (end_of_stream, self.shared.clone()) else {
            return Action::Continue;
        };
        let headers = request_headers();
        let plan = policy::plan(&shared.config, &headers, &routed_cluster);
        if !matches!(plan, HeadPlan::Ignore) {
            // For the decision line: headers cannot be read later. Only
            // what a log field reads of it is kept.
            self.request_id = headers
                .get("x-request-id")
                .map(|id| shared.config.redactor.keep(id).to_vec());
        }
        match plan {
            HeadPlan::Ignore => Action::Continue,
            HeadPlan::Pass(target, reason) => {
                let verdict = Verdict::pass(reason, None, None);
                shared.warn_throttled(|| {
                    format!(
                        "azp-bridge: {} request_id={}",
                        verdict.describe(&shared.config, &target),
                        shared.config.redactor.field(self.request_id.as_deref())
                    )
                });
                if let Some(metrics) = &shared.metrics {
                    metrics.count_pass(reason);
                }
                Action::Continue
            }
            HeadPlan::RejectTooLarge => self.reject_too_large(&shared),
            HeadPlan::Inspect(inspection) => {
                self.state = State::Buffering {
                    inspection,
                    body_size: 0,
                };
                if shared.config.hold_headers {
                    // Envoy calls the body callback of a paused filter only with
                    // allow_on_headers_stop_iteration; on_tick reports a body that never comes.
                    let id = self.context_id;
                    shared.with_held(|held| held.hold(id, now_ms()));
                    self.held = true;
                    Action::Pause
                } else {
                    // Headers leave now; the body may change length later.
                    set_header("content-length", None);
                    Action::Continue
                }
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.release_held();
        let (State::Buffering { body_size: seen, .. }, Some(shared)) = (&mut self.state, self.shared.clone()) else {
            return Action::Continue;
        };
        *seen = body_size;
        if body_size > shared.config.max_body_bytes {
            return self.reject_too_large(&shared);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.finish(&shared);
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.release_held();
        // With trailers, the body callback never sees the end of the stream.
        if let Some(shared) = self.shared.clone() {
            self.finish(&shared);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let (ResponseState::Expected, Some(shared)) = (&self.response, self.shared.clone()) else {
            return Action::Continue;
        };
        let status = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status")
            .ok()
            .flatten();
        let success = status.is_some_and(|s| s.len() == 3 && s.first() == Some(&b'2'));
        if !success || end_of_stream {
            // Keycloak's errors, and answers without a body, go as they are.
            return self.pass_response(&shared, if success { "no body" } else { "not 2xx" });
        }
        self.response = ResponseState::Buffering { body_size: 0 };
        if shared.config.hold_headers {
            // Held until the body is known: then the exact Content-Length.
            Action::Pause
        } else {
            // Headers leave now; the body will be shorter.
            set_response_header("content-length", None);
            Action::Continue
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let (ResponseState::Buffering { body_size: seen }, Some(shared)) = (&mut self.response, self.shared.clone())
        else {
            return Action::Continue;
        };
        *seen = body_size;
        if body_size > shared.config.max_response_bytes {
            // What Envoy holds so far, and the rest, go as they are.
            return self.pass_response(&shared, "over max_response_bytes");
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.finish_response(&shared, body_size);
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        // With trailers, the body callback never sees the end of the stream.
        if let (&ResponseState::Buffering { body_size }, Some(shared)) = (&self.response, self.shared.clone()) {
            self.finish_response(&shared, body_size);
        }
        Action::Continue
    }
}

impl BridgeRequest {
    /// The request is no longer waiting for its body (it came, or the stream ended).
    fn release_held(&mut self) {
        if std::mem::take(&mut self.held) {
            if let Some(shared) = &self.shared {
                let id = self.context_id;
                shared.with_held(|held| held.release(id));
            }
        }
    }

    /// The response goes to the client as Keycloak sent it.
    fn pass_response(&mut self, shared: &Shared, why: &str) -> Action {
        self.response = ResponseState::Untouched;
        debug!("azp-bridge: bridged response passed unchanged ({why})");
        if let Some(metrics) = &shared.metrics {
            metrics.response_passed.count();
        }
        Action::Continue
    }

    /// The whole body of a bridged 2xx response: without its `id_token`.
    fn finish_response(&mut self, shared: &Shared, body_size: usize) {
        self.response = ResponseState::Untouched;
        let body = match hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size) {
            Ok(body) => body.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        if body.len() != body_size {
            self.pass_response(shared, "body unreadable");
            return;
        }
        let new_body = match response::drop_id_token(&body) {
            ResponseEdit::DropIdToken(new_body) => new_body,
            ResponseEdit::Pass(why) => {
                self.pass_response(shared, why);
                return;
            }
        };
        if hostcalls::set_buffer(BufferType::HttpResponseBody, 0, body.len(), &new_body).is_err() {
            error!("azp-bridge: could not replace the response body; forwarded unchanged");
            self.pass_response(shared, "body not replaceable");
            return;
        }
        if shared.config.hold_headers {
            set_response_header("content-length", Some(&new_body.len().to_string()));
        }
        if let Some(metrics) = &shared.metrics {
            metrics.id_token_dropped.count();
        }
    }

    fn reject_too_large(&mut self, shared: &Shared) -> Action {
        self.state = State::Passing;
        if let Some(metrics) = &shared.metrics {
            metrics.rejected_body_too_large.count();
        }
        shared.warn_throttled(|| {
            format!(
                "azp-bridge: token request body over max_body_bytes ({}), answered 413 request_id={}",
                shared.config.max_body_bytes,
                shared.config.redactor.field(self.request_id.as_deref())
            )
        });
        let body = policy::too_large_body(&shared.config);
        let headers = vec![("content-type", "application/json"), ("cache-control", "no-store")];
        if hostcalls::send_http_response(413, headers, Some(body.as_bytes())).is_err() {
            error!("azp-bridge: could not send the 413 answer");
        }
        Action::Pause
    }

    /// Decides on the buffered body and applies the verdict.
    fn finish(&mut self, shared: &Shared) {
        let State::Buffering { inspection, body_size } = std::mem::replace(&mut self.state, State::Passing) else {
            return;
        };
        // The body must be read whole: it is replaced as (0, its full length).
        let body = match hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size) {
            Ok(body) => body.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        if body.len() != body_size {
            warn!("azp-bridge: request body unreadable, forwarded unchanged");
            return;
        }
        let verdict = policy::decide_with(&shared.config, &inspection, &body, &fresh);
        let line = || {
            format!(
                "azp-bridge: {} request_id={}",
                verdict.describe(&shared.config, &inspection.target),
                shared.config.redactor.field(self.request_id.as_deref())
            )
        };
        // Anyone can send an ambiguous or undecodable request (or a forged
        // token that makes the filter sign): none may flood the warning log.
        // A malformed token is only a debug line.
        match &verdict.outcome {
            Outcome::Pass(PassReason::Ambiguous(_) | PassReason::SigningFailed) => shared.warn_throttled(line),
            _ if log::log_enabled!(log::Level::Debug) => debug!("{}", line()),
            _ => {}
        }
        match verdict.outcome {
            Outcome::Pass(reason) => {
                if let Some(metrics) = &shared.metrics {
                    metrics.count_pass(reason);
                }
            }
            Outcome::Rewrite(rewrite) => {
                if hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body.len(), &rewrite.body).is_err() {
                    error!("azp-bridge: could not replace the request body; forwarded unchanged");
                    return;
                }
                if shared.config.hold_headers {
                    if inspection.has_content_length {
                        set_header("content-length", Some(&rewrite.body.len().to_string()));
                    }
                    match &rewrite.authorization {
                        AuthorizationChange::Keep => {}
                        AuthorizationChange::Remove => set_header("authorization", None),
                        AuthorizationChange::Set(value) => set_header("authorization", Some(value)),
                    }
                }
                if let Some(metrics) = &shared.metrics {
                    metrics.rewritten.count();
                }
                if rewrite.drop_id_token {
                    self.response = ResponseState::Expected;
                }
            }
        }
    }
}

impl BridgeRoot {
    /// Held requests that never got their body: counted, and the first one
    /// of this worker logged as an error naming the missing setting.
    fn report_stuck_requests(&self) {
        let Some(shared) = &self.shared else { return };
        if !shared.config.hold_headers {
            return;
        }
        let stuck = shared.with_held(|held| held.check(now_ms()));
        if stuck.newly_stuck > 0 {
            if let Some(metrics) = &shared.metrics {
                metrics.held_without_body.add(stuck.newly_stuck);
            }
        }
        if stuck.first {
            error!("{}", held::stuck_message());
        }
    }
}

/// Envoy's wall clock since the Unix epoch, if the host gives it.
fn host_time() -> Option<Duration> {
    hostcalls::get_current_time().ok()?.duration_since(UNIX_EPOCH).ok()
}

/// Wall-clock milliseconds, 0 if unavailable.
fn now_ms() -> u64 {
    host_time().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The `test-trap` build's deliberate panic (tests of failure_policy only).
#[cfg(feature = "test-trap")]
#[allow(clippy::panic)]
fn trap_if_asked() {
    if request_headers().get("x-azp-bridge-test-trap").is_some() {
        panic!("deliberate trap (test-trap build)");
    }
}

/// The host's clock and 128 random bits (WASI `random_get`), for a signed
/// client assertion; `None` if the host gives either not.
fn fresh() -> Option<Fresh> {
    let now_seconds = host_time()?.as_secs();
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti).ok()?;
    Some(Fresh { now_seconds, jti })
}

/// The Envoy cluster this request was routed to: Envoy resolves the route,
/// and so the cluster, before the first filter's request headers callback.
fn routed_cluster() -> Option<Vec<u8>> {
    hostcalls::get_property(vec!["xds", "cluster_name"]).ok().flatten()
}

/// Lines Envoy would drop are then not even formatted (checked per request
/// without a host call).
fn follow_host_log_level() {
    let level = match hostcalls::get_log_level() {
        Ok(LogLevel::Trace) => log::LevelFilter::Trace,
        Ok(LogLevel::Debug) => log::LevelFilter::Debug,
        Ok(LogLevel::Info) | Err(_) => log::LevelFilter::Info,
        Ok(LogLevel::Warn) => log::LevelFilter::Warn,
        Ok(LogLevel::Error) => log::LevelFilter::Error,
        Ok(LogLevel::Critical) => log::LevelFilter::Off,
    };
    log::set_max_level(level);
}

fn set_header(name: &str, value: Option<&str>) {
    set_map_value(MapType::HttpRequestHeaders, name, value);
}

fn set_response_header(name: &str, value: Option<&str>) {
    set_map_value(MapType::HttpResponseHeaders, name, value);
}

fn set_map_value(map: MapType, name: &str, value: Option<&str>) {
    if hostcalls::set_map_value(map, name, value).is_err() {
        let which = if matches!(map, MapType::HttpResponseHeaders) {
            "response"
        } else {
            "request"
        };
        warn!("azp-bridge: could not change {which} header {name}");
    }
}
