//! The proxy-wasm shell: carries bytes between Envoy and the core. It
//! implements [`Host`] with host calls, hands each callback to a
//! [`Stream`] (one per HTTP context) or the [`Plugin`] (one per root
//! context), and maps the core's counters to Envoy metrics. No decision is
//! made here.
//!
//! Host calls go through `proxy_wasm::hostcalls`, whose `Result`s are handled,
//! rather than the trait helpers, which unwrap.

use crate::counters::{self, Counter, VmShare};
use crate::host::{Flow, Host, Refused};
use crate::plugin::Plugin;
use crate::policy::HeaderPairs;
use crate::stream::Stream;
use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
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
    proxy_wasm::set_root_context(|_| Box::<Root>::default());
}}

/// Envoy, through its host calls.
struct Envoy;

fn done(result: Result<(), proxy_wasm::types::Status>) -> Result<(), Refused> {
    result.map_err(|_| Refused)
}

fn buffer(which: BufferType, len: usize) -> Vec<u8> {
    hostcalls::get_buffer(which, 0, len).ok().flatten().unwrap_or_default()
}

impl Host for Envoy {
    /// In the request headers callback the host always has them; the SDK
    /// returns names as `String` (Envoy allows only token characters in
    /// names) and values as bytes.
    fn request_headers(&self) -> HeaderPairs {
        HeaderPairs(hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default())
    }

    /// Envoy resolves the route, and so the cluster, before the first
    /// filter's request headers callback.
    fn routed_cluster(&self) -> Option<Vec<u8>> {
        hostcalls::get_property(vec!["xds", "cluster_name"]).ok().flatten()
    }

    fn now(&self) -> Option<Duration> {
        hostcalls::get_current_time().ok()?.duration_since(UNIX_EPOCH).ok()
    }

    fn random(&self, bytes: &mut [u8]) -> Result<(), Refused> {
        getrandom::fill(bytes).map_err(|_| Refused)
    }

    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    /// In an HTTP context Envoy stores a new property and answers Ok; the
    /// filter sets one per token request.
    fn set_property(&mut self, name: &str, value: &[u8]) -> Result<(), Refused> {
        done(hostcalls::set_property(vec![name], Some(value)))
    }

    fn request_body(&self, len: usize) -> Vec<u8> {
        buffer(BufferType::HttpRequestBody, len)
    }

    fn set_request_body(&mut self, len: usize, body: &[u8]) -> Result<(), Refused> {
        done(hostcalls::set_buffer(BufferType::HttpRequestBody, 0, len, body))
    }

    fn set_request_header(&mut self, name: &str, value: Option<&str>) -> Result<(), Refused> {
        done(hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value))
    }

    fn send_response(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), Refused> {
        done(hostcalls::send_http_response(status, headers.to_vec(), Some(body)))
    }

    fn response_status(&self) -> Option<Vec<u8>> {
        hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status")
            .ok()
            .flatten()
    }

    fn set_response_header(&mut self, name: &str, value: Option<&str>) -> Result<(), Refused> {
        done(hostcalls::set_map_value(MapType::HttpResponseHeaders, name, value))
    }

    fn response_body(&self, len: usize) -> Vec<u8> {
        buffer(BufferType::HttpResponseBody, len)
    }

    fn set_response_body(&mut self, len: usize, body: &[u8]) -> Result<(), Refused> {
        done(hostcalls::set_buffer(BufferType::HttpResponseBody, 0, len, body))
    }
}

#[derive(Default)]
struct Root {
    plugin: Option<Rc<Plugin>>,
    /// Envoy's metric id of each counter, in [`Counter::all`] order; `None`
    /// if they could not be defined (the filter then runs without them).
    metrics: Option<Vec<u32>>,
    /// Envoy's metric id of the memory gauge, once this context joined the
    /// VM's share of it ([`VM_MEMORY`]).
    memory: Option<u32>,
}

thread_local! {
    /// The VM's share of the memory gauge, one for all its root contexts
    /// (a VM is single-threaded: this is per VM).
    static VM_MEMORY: VmShare = VmShare::default();
}

impl Root {
    /// The VM's linear memory into the summed gauge (a page is 64 KiB).
    fn report_memory(&self) {
        if let Some(id) = self.memory {
            let bytes = u64::try_from(core::arch::wasm32::memory_size(0))
                .unwrap_or(0)
                .saturating_mul(65_536);
            let change = VM_MEMORY.with(|vm| vm.change_to(bytes));
            if change != 0 {
                let _ = hostcalls::increment_metric(id, change);
            }
        }
    }

    /// Hands the counts of the last second to Envoy.
    fn flush_counters(&self) {
        let (Some(plugin), Some(metrics)) = (&self.plugin, &self.metrics) else {
            return;
        };
        plugin.counts().flush(|index, n| {
            if let Some(&id) = metrics.get(index) {
                let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
            }
        });
    }
}

fn define_metrics() -> Option<Vec<u32>> {
    Counter::all()
        .map(|counter| {
            let name = format!("{}{}", counters::PREFIX, counter.name());
            hostcalls::define_metric(MetricType::Counter, &name).ok()
        })
        .collect()
}

impl Context for Root {
    /// The plugin is going away (a new configuration, or shutdown): hand over
    /// the counts of the last second rather than lose them.
    fn on_done(&mut self) -> bool {
        self.flush_counters();
        if let Some(id) = self.memory.take() {
            let change = VM_MEMORY.with(VmShare::leave);
            if change != 0 {
                let _ = hostcalls::increment_metric(id, change);
            }
        }
        true
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        follow_host_log_level();
        // The tick flushes the counters, reports held requests that got no
        // body, and follows Envoy's log level, which can change at run time
        // (admin /logging).
        let _ = hostcalls::set_tick_period(Duration::from_secs(1));
        let raw = buffer(BufferType::PluginConfiguration, usize::MAX);
        let Some(plugin) = Plugin::configure(&raw, &Envoy) else {
            return false;
        };
        self.metrics = define_metrics();
        if self.metrics.is_none() {
            warn!("azp-bridge: counters could not be defined; running without them");
        }
        if self.memory.is_none() {
            let name = format!("{}{}", counters::PREFIX, counters::MEMORY_GAUGE);
            self.memory = hostcalls::define_metric(MetricType::Gauge, &name).ok();
            if self.memory.is_some() {
                VM_MEMORY.with(VmShare::join);
            }
        }
        // Not reported yet: the first tick does. Envoy configures each new
        // configuration in short-lived VMs of its own too, and destroys them
        // without on_done: a share they reported would never be taken back.
        self.plugin = Some(Rc::new(plugin));
        true
    }

    fn on_tick(&mut self) {
        follow_host_log_level();
        if let Some(plugin) = &self.plugin {
            plugin.tick(&Envoy);
        }
        self.flush_counters();
        self.report_memory();
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // The SDK traps on None: without a configuration, requests just pass.
        Some(Box::new(Request(Stream::new(self.plugin.clone(), context_id))))
    }
}

/// One HTTP stream; dropping it (Envoy deletes the context when the stream
/// ends) releases a held request.
struct Request(Stream);

impl Context for Request {}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Pause => Action::Pause,
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "test-trap")]
        trap_if_asked();
        action(self.0.on_request_headers(&mut Envoy, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(self.0.on_request_body(&mut Envoy, body_size, end_of_stream))
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        action(self.0.on_request_trailers(&mut Envoy))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        action(self.0.on_response_headers(&mut Envoy, end_of_stream))
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(self.0.on_response_body(&mut Envoy, body_size, end_of_stream))
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        action(self.0.on_response_trailers(&mut Envoy))
    }
}

/// The `test-trap` build's deliberate panic (tests of failure_policy only).
#[cfg(feature = "test-trap")]
#[allow(clippy::panic)]
fn trap_if_asked() {
    use crate::policy::RequestHeaders;
    if Envoy.request_headers().get("x-azp-bridge-test-trap").is_some() {
        panic!("deliberate trap (test-trap build)");
    }
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
