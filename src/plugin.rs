//! What every request of one filter configuration shares (one per worker
//! and configuration: Envoy runs a VM per worker thread): the parsed
//! configuration, the pending counts, the held requests and the warning
//! throttle. The shell makes one in `on_configure` and calls
//! [`Plugin::tick`] once a second.

use crate::config::{self, Config};
use crate::counters::{Counter, Counts};
use crate::held::{self, Held};
use crate::host::{self, Host};
use crate::throttle::Throttle;
use log::{debug, error, info, warn};
use std::cell::Cell;

pub struct Plugin {
    pub config: Config,
    counts: Counts,
    /// This worker's held requests still waiting for their body.
    held: Cell<Held>,
    /// Warnings caused by request input: at most one a minute.
    warnings: Cell<Throttle>,
}

impl Plugin {
    pub fn new(config: Config) -> Self {
        Plugin {
            config,
            counts: Counts::default(),
            held: Cell::new(Held::default()),
            warnings: Cell::new(Throttle::default()),
        }
    }

    /// Parses the plugin configuration (`raw`, as Envoy hands it over) and
    /// says what runs; `None` refuses it (the error is logged, never a value).
    pub fn configure<H: Host + ?Sized>(raw: &[u8], host: &H) -> Option<Plugin> {
        match config::parse(raw, &|name| host.env(name)) {
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
                    // The module cannot read the setting; the tick reports its absence.
                    info!(
                        "azp-bridge: hold_headers=true: the wasm filter must set allow_on_headers_stop_iteration: true; \
                         a held token request that gets no body within {} s is logged as an error and counted held_without_body",
                        held::STUCK_AFTER_MS / 1000
                    );
                }
                if let Some(warning) = config.buffer_limit_warning() {
                    warn!("azp-bridge: {warning}");
                }
                Some(Plugin::new(config))
            }
            Err(e) => {
                error!("azp-bridge: {e}");
                None
            }
        }
    }

    /// The counts not yet handed to the host.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    pub(crate) fn count(&self, counter: Counter) {
        self.counts.count(counter);
    }

    /// Once a second: held requests that never got their body are counted,
    /// and the first one of this worker logged as an error naming the
    /// missing setting.
    pub fn tick<H: Host + ?Sized>(&self, host: &H) {
        if !self.config.hold_headers {
            return;
        }
        let stuck = self.with_held(|held| held.check(host::now_ms(host)));
        if stuck.newly_stuck > 0 {
            self.counts.add(Counter::HeldWithoutBody, stuck.newly_stuck);
        }
        if stuck.first {
            error!("{}", held::stuck_message());
        }
    }

    /// How many held requests wait for their body.
    pub fn held_waiting(&self) -> usize {
        self.with_held(|held| held.waiting())
    }

    pub(crate) fn with_held<R>(&self, f: impl FnOnce(&mut Held) -> R) -> R {
        let mut held = self.held.take();
        let result = f(&mut held);
        self.held.set(held);
        result
    }

    /// A line about a request (request input decides whether it is
    /// written): a warning at most once a minute, else a debug line. The
    /// line is only made when it will be written. Whether it was a warning.
    pub(crate) fn warn_throttled<H: Host + ?Sized>(&self, host: &H, line: impl FnOnce() -> String) -> bool {
        let mut warnings = self.warnings.get();
        let allowed = warnings.allow(host::now_ms(host));
        self.warnings.set(warnings);
        if allowed {
            warn!(
                "{} (at most one such warning a minute per worker; the others at debug level)",
                line()
            );
        } else if log::log_enabled!(log::Level::Debug) {
            debug!("{}", line());
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::FakeHost;
    use std::time::Duration;

    const CONFIG: &str = r#"{"upstream_clusters":["keycloak"],"hold_headers":true,"clients":[{"client_id":"admin","client_secret_env":"ADMIN_SECRET","allowed_callers":["mobile"]}]}"#;

    fn host() -> FakeHost {
        FakeHost {
            env: vec![("ADMIN_SECRET".to_owned(), "s3cr3t".to_owned())],
            ..FakeHost::default()
        }
    }

    #[test]
    fn configure_reads_secrets_from_the_host_environment() {
        let plugin = Plugin::configure(CONFIG.as_bytes(), &host()).unwrap();
        assert_eq!(plugin.config.clients[0].secret.expose(), "s3cr3t");
        assert!(Plugin::configure(CONFIG.as_bytes(), &FakeHost::default()).is_none());
        assert!(Plugin::configure(b"{", &host()).is_none());
    }

    #[test]
    fn a_held_request_without_body_is_counted_once_on_the_tick() {
        let mut host = host();
        let plugin = Plugin::configure(CONFIG.as_bytes(), &host).unwrap();
        plugin.with_held(|held| held.hold(1, host::now_ms(&host)));
        plugin.tick(&host);
        assert_eq!(plugin.counts().pending(Counter::HeldWithoutBody), 0);
        host.advance(Duration::from_millis(held::STUCK_AFTER_MS + 1));
        plugin.tick(&host);
        plugin.tick(&host);
        assert_eq!(plugin.counts().pending(Counter::HeldWithoutBody), 1);
        assert_eq!(plugin.held_waiting(), 0);
    }

    #[test]
    fn warnings_are_throttled_to_one_a_minute() {
        let mut host = host();
        let plugin = Plugin::configure(CONFIG.as_bytes(), &host).unwrap();
        assert!(plugin.warn_throttled(&host, || "one".to_owned()));
        assert!(!plugin.warn_throttled(&host, || "two".to_owned()));
        host.advance(Duration::from_secs(60));
        assert!(plugin.warn_throttled(&host, || "three".to_owned()));
    }
}
