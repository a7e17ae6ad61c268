//! The floor of any body-rewriting proxy-wasm filter, for the benchmark.
//!
//! It does what azp-bridge must do on a rewritten request, minus the
//! decision: when a request has a body it drops `Content-Length` before the
//! headers leave (a rewrite may change the length; Envoy then frames the body
//! itself), buffers the body to its end, reads it out of Envoy and writes the
//! same bytes back. Requests without a body pass at the headers callback.
//!
//! With the `read-headers` feature it also reads the request headers, in one
//! host call read in place as azp-bridge reads them, and decides nothing with
//! them: the floor of a filter that must see a header (the path, the
//! caller's Authorization) before it knows whether to buffer.
//!
//! With the `response` feature it also edits the answer, as azp-bridge does
//! for a bridged refresh: a 2xx response to a request that had a body loses
//! its `Content-Length` in the headers callback (the body will be shorter),
//! is buffered to its end, read out of Envoy, and written back without its
//! `"id_token":"..."` member, found by a plain byte search (no JSON parsing:
//! a floor, not a product; a body without one is written back unchanged).
//!
//! With the `guards` feature (which takes both others) it also makes the
//! host calls azp-bridge makes around a rewrite and decides nothing with
//! them: it reads the route's cluster once the request body is complete and
//! writes a fixed decision as filter state, as the access log reads it.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(BufferRoot));
}}

struct BufferRoot;

impl Context for BufferRoot {}

impl RootContext for BufferRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(BufferRequest {
            buffering: false,
            #[cfg(feature = "response")]
            had_body: false,
            #[cfg(feature = "response")]
            response_buffering: false,
        }))
    }
}

struct BufferRequest {
    buffering: bool,
    /// The request had a body: its 2xx answer is edited.
    #[cfg(feature = "response")]
    had_body: bool,
    #[cfg(feature = "response")]
    response_buffering: bool,
}

impl Context for BufferRequest {}

impl HttpContext for BufferRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            #[cfg(feature = "read-headers")]
            read_request_headers();
            self.buffering = true;
            #[cfg(feature = "response")]
            {
                self.had_body = true;
            }
            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, "content-length", None);
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.buffering {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.buffering = false;
        #[cfg(feature = "guards")]
        guard_and_log();
        if let Ok(Some(body)) = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size) {
            let _ = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body.len(), &body);
        }
        Action::Continue
    }

    #[cfg(feature = "response")]
    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if !self.had_body || end_of_stream {
            return Action::Continue;
        }
        let status = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status")
            .ok()
            .flatten();
        if status.is_some_and(|s| s.len() == 3 && s.first() == Some(&b'2')) {
            self.response_buffering = true;
            let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, "content-length", None);
        }
        Action::Continue
    }

    #[cfg(feature = "response")]
    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.response_buffering {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.response_buffering = false;
        if let Ok(Some(body)) = hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size) {
            let cut = without_id_token(&body);
            let _ = hostcalls::set_buffer(BufferType::HttpResponseBody, 0, body.len(), cut.as_deref().unwrap_or(&body));
        }
        Action::Continue
    }
}

/// `body` without its `"id_token":"..."` member and the comma that joined it
/// to its neighbour; None when there is none. A byte search: the value is a
/// compact JWS (no quote, no backslash), as Keycloak writes it.
#[cfg(feature = "response")]
fn without_id_token(body: &[u8]) -> Option<Vec<u8>> {
    const KEY: &[u8] = b"\"id_token\":\"";
    let start = body.windows(KEY.len()).position(|w| w == KEY)?;
    let value_end = start + KEY.len() + body[start + KEY.len()..].iter().position(|&b| b == b'"')? + 1;
    let (cut_from, cut_to) = if body.get(value_end) == Some(&b',') {
        (start, value_end + 1)
    } else if start > 0 && body[start - 1] == b',' {
        (start - 1, value_end)
    } else {
        (start, value_end)
    };
    let mut out = Vec::with_capacity(body.len() - (cut_to - cut_from));
    out.extend_from_slice(&body[..cut_from]);
    out.extend_from_slice(&body[cut_to..]);
    Some(out)
}

/// All request headers in one host call, as azp-bridge reads them before it
/// plans (the SDK's `get_map_bytes`); the pairs are dropped unread.
#[cfg(feature = "read-headers")]
fn read_request_headers() {
    std::hint::black_box(hostcalls::get_map_bytes(MapType::HttpRequestHeaders).ok());
}

/// The route's cluster, read as azp-bridge's `upstream_clusters` guard reads
/// it, and a decision written for the access log; neither is used.
#[cfg(feature = "guards")]
fn guard_and_log() {
    std::hint::black_box(hostcalls::get_property(vec!["xds", "cluster_name"]).ok());
    let _ = hostcalls::set_property(vec!["azp_bridge.decision"], Some(b"rewritten client=admin"));
}
