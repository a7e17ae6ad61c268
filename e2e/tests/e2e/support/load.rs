//! Mixed load through Envoy in front of a real Keycloak, with Keycloak
//! stopped and restarted in the middle (e2e/tests/e2e/keycloak.rs).

use super::http1::{self, form_body, form_post};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The kinds of request in one load cycle, and the status each must get
/// while Keycloak is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Password grant of the admin client (passes through).
    Issue,
    /// The mobile app refreshing the admin client's token (rewritten).
    Rewrite,
    /// The mobile app's own password grant (passes through).
    OwnGrant,
    /// A non-token request: the realm's discovery document.
    NonToken,
    /// A refresh with a token that is not a JWS: the filter passes it,
    /// Keycloak answers 400.
    Malformed,
}

impl Kind {
    fn expected(self) -> u16 {
        match self {
            Kind::Malformed => 400,
            _ => 200,
        }
    }
}

#[derive(Default)]
pub struct Tally {
    pub by_kind: std::collections::BTreeMap<(Kind, u16), u64>,
    pub unexpected: Vec<String>,
    /// Slowest answer while Keycloak was down.
    pub slowest_while_down: Duration,
    pub total: u64,
}

pub struct Load {
    pub envoy_port: u16,
    pub realm_path: String,
    pub admin_client: &'static str,
    pub admin_secret: &'static str,
    pub mobile_client: &'static str,
}

/// Shared between the load threads and the fault injector.
#[derive(Default)]
pub struct Phase {
    /// Keycloak is (being) stopped: 503 from Envoy is expected.
    pub keycloak_down: AtomicBool,
    /// Bumped each time Keycloak goes down or comes back.
    pub epoch: AtomicU64,
    pub stop: AtomicBool,
}

impl Load {
    /// One thread's loop until `phase.stop`.
    pub fn run(&self, phase: &Phase, tally: &Mutex<Tally>) {
        let token_path = format!("{}/protocol/openid-connect/token", self.realm_path);
        let discovery = format!("{}/.well-known/openid-configuration", self.realm_path);
        let user = ("alice", "alice-password");
        while !phase.stop.load(Ordering::Relaxed) {
            let epoch = phase.epoch.load(Ordering::SeqCst);
            let mut refresh_token = String::new();
            for kind in [
                Kind::Issue,
                Kind::Rewrite,
                Kind::OwnGrant,
                Kind::NonToken,
                Kind::Malformed,
            ] {
                let request = match kind {
                    Kind::Issue => form_post(
                        &token_path,
                        &[],
                        &form_body(&[
                            ("grant_type", "password"),
                            ("client_id", self.admin_client),
                            ("client_secret", self.admin_secret),
                            ("username", user.0),
                            ("password", user.1),
                        ]),
                    ),
                    Kind::Rewrite => form_post(
                        &token_path,
                        &[],
                        &form_body(&[
                            ("grant_type", "refresh_token"),
                            ("client_id", self.mobile_client),
                            ("refresh_token", &refresh_token),
                        ]),
                    ),
                    Kind::OwnGrant => form_post(
                        &token_path,
                        &[],
                        &form_body(&[
                            ("grant_type", "password"),
                            ("client_id", self.mobile_client),
                            ("username", user.0),
                            ("password", user.1),
                        ]),
                    ),
                    Kind::NonToken => format!("GET {discovery} HTTP/1.1\r\nhost: keycloak.test\r\n\r\n").into_bytes(),
                    Kind::Malformed => form_post(
                        &token_path,
                        &[],
                        &form_body(&[
                            ("grant_type", "refresh_token"),
                            ("client_id", self.mobile_client),
                            ("refresh_token", "not.a-jws"),
                        ]),
                    ),
                };
                let started = Instant::now();
                let down_before = phase.keycloak_down.load(Ordering::SeqCst);
                let resp = http1::Connection::open(self.envoy_port).ok().and_then(|mut c| {
                    c.send(&request).ok()?;
                    c.read_response()
                });
                let elapsed = started.elapsed();
                let down_after = phase.keycloak_down.load(Ordering::SeqCst);
                let status = resp.as_ref().map_or(0, |r| r.status);
                if kind == Kind::Issue && status == 200 {
                    let json: serde_json::Value =
                        serde_json::from_slice(&resp.as_ref().unwrap().body).unwrap_or_default();
                    refresh_token = json["refresh_token"].as_str().unwrap_or_default().to_owned();
                }
                let disturbed = down_before || down_after || phase.epoch.load(Ordering::SeqCst) != epoch;
                let mut tally = tally.lock().unwrap();
                tally.total += 1;
                *tally.by_kind.entry((kind, status)).or_default() += 1;
                let ok = status == kind.expected()
                    // Keycloak down: Envoy answers 503 itself.
                    || (disturbed && status == 503)
                    // A cycle that spans Keycloak's restart holds a token of the old server.
                    || (disturbed && kind == Kind::Rewrite && status == 400);
                if !ok {
                    tally.unexpected.push(format!("{kind:?}: {status}"));
                }
                if down_before && down_after && status == 503 {
                    tally.slowest_while_down = tally.slowest_while_down.max(elapsed);
                }
                drop(tally);
                if status == 503 {
                    // Keycloak is down: keep probing, without spinning.
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// Runs `threads` load loops while `faults` runs, then stops them.
pub fn run(load: Arc<Load>, threads: usize, phase: Arc<Phase>, faults: impl FnOnce()) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (load, phase, tally) = (load.clone(), phase.clone(), tally.clone());
            std::thread::spawn(move || load.run(&phase, &tally))
        })
        .collect();
    faults();
    phase.stop.store(true, Ordering::SeqCst);
    for handle in handles {
        handle.join().unwrap();
    }
    Arc::try_unwrap(tally).ok().unwrap().into_inner().unwrap()
}
