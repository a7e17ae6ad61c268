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
        Some(Box::new(BufferRequest { buffering: false }))
    }
}

struct BufferRequest {
    buffering: bool,
}

impl Context for BufferRequest {}

impl HttpContext for BufferRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            #[cfg(feature = "read-headers")]
            read_request_headers();
            self.buffering = true;
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
        if let Ok(Some(body)) = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size) {
            let _ = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body.len(), &body);
        }
        Action::Continue
    }
}

/// All request headers in one host call, as azp-bridge reads them before it
/// plans (the SDK's `get_map_bytes`); the pairs are dropped unread.
#[cfg(feature = "read-headers")]
fn read_request_headers() {
    std::hint::black_box(hostcalls::get_map_bytes(MapType::HttpRequestHeaders).ok());
}
