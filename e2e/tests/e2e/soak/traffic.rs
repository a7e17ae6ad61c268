//! The soak's mixed load against the stand-in: every kind of request the
//! filter meets, over HTTP/1.1 and HTTP/2, in both header modes, and
//! clients that give up mid-body. Each kind knows whether the filter counts
//! it (a token request whose body arrived whole) and which statuses it may
//! get.

use super::tokens;
use crate::support::http1::{self, chunked_form_post, form_post};
use crate::support::{h2client, TOKEN_PATH};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// One kind of request; the load sends them in this order, round and round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A refresh of the target client's token by an allowed caller (rewritten), streamed mode.
    Bridged,
    /// The same in the held mode.
    BridgedHeld,
    /// Over HTTP/2, its body in two DATA frames, streamed mode.
    BridgedH2,
    /// Over HTTP/2, held mode.
    BridgedH2Held,
    /// Chunked HTTP/1.1, streamed mode.
    BridgedChunked,
    /// On the load thread's one keep-alive connection, held mode: it stays
    /// on a replaced listener until Envoy's drain closes it, so its counts
    /// are the old configuration's.
    BridgedKeepAlive,
    /// A token of the client that every other push adds (rewritten) and removes (unknown_azp).
    PushedClient,
    /// The caller refreshing its own token (passed.same_client).
    SameClient,
    /// A Content-Type Keycloak may read otherwise (passed.ambiguous).
    Ambiguous,
    /// A body over max_body_bytes (413, rejected.body_too_large), streamed mode.
    Oversized,
    /// The same in the held mode.
    OversizedHeld,
    /// Not a token request: the filter is not even entered.
    NonToken,
    /// A client that sends half its body and disconnects: not counted.
    Abandoned,
    /// Held mode, abandoned.
    AbandonedHeld,
}

const CYCLE: [Kind; 14] = [
    Kind::Bridged,
    Kind::NonToken,
    Kind::BridgedHeld,
    Kind::SameClient,
    Kind::BridgedH2,
    Kind::Ambiguous,
    Kind::BridgedH2Held,
    Kind::Oversized,
    Kind::BridgedChunked,
    Kind::PushedClient,
    Kind::OversizedHeld,
    Kind::Abandoned,
    Kind::AbandonedHeld,
    Kind::BridgedKeepAlive,
];

impl Kind {
    /// Whether the filter must count it exactly once.
    pub fn counted(self) -> bool {
        !matches!(self, Kind::NonToken | Kind::Abandoned | Kind::AbandonedHeld)
    }

    fn held(self) -> bool {
        matches!(
            self,
            Kind::BridgedHeld
                | Kind::BridgedH2Held
                | Kind::OversizedHeld
                | Kind::AbandonedHeld
                | Kind::BridgedKeepAlive
        )
    }

    /// Whether `status` is one this kind may get (`resetting`: the stand-in
    /// reset connections during the request; 0: no answer, for the
    /// abandoned ones only).
    fn allows(self, status: u16, resetting: bool) -> bool {
        match self {
            Kind::Oversized | Kind::OversizedHeld => status == 413,
            Kind::Abandoned | Kind::AbandonedHeld => status == 0,
            _ => status == 200 || (resetting && status == 503),
        }
    }
}

/// What the load did, shared with the sampler.
#[derive(Default)]
pub struct Tally {
    pub sent: AtomicU64,
    /// Token requests the filter must have counted.
    pub counted: AtomicU64,
    pub unexpected: AtomicU64,
    pub server_errors: AtomicU64,
    pub by_kind: Mutex<BTreeMap<(Kind, u16), u64>>,
    /// The first unexpected answers, for the report.
    pub examples: Mutex<Vec<String>>,
}

impl Tally {
    pub fn sent_of(&self, kind: Kind) -> u64 {
        let by_kind = self.by_kind.lock().unwrap();
        by_kind.iter().filter(|((k, _), _)| *k == kind).map(|(_, n)| n).sum()
    }
}

/// The stand-in's resets, as the fault schedule sets them.
pub struct Resets {
    /// The stand-in's own switch ([`super::standin::StandIn::resetting`]).
    pub on: std::sync::Arc<AtomicBool>,
    /// Bumped when a reset window opens and when it closes.
    pub epoch: AtomicU64,
}

pub struct Traffic {
    pub streamed_port: u16,
    pub held_port: u16,
}

impl Traffic {
    /// One load thread: the cycle, round and round, until `stop`.
    pub fn run(&self, stop: &AtomicBool, resets: &Resets, tally: &Tally) {
        let bodies = tokens::Bodies::new();
        let mut kept: Option<http1::Connection> = None;
        'run: loop {
            for kind in CYCLE {
                if stop.load(Ordering::Relaxed) {
                    break 'run;
                }
                let epoch = resets.epoch.load(Ordering::SeqCst);
                let reset_before = resets.on.load(Ordering::SeqCst);
                let status = match kind {
                    Kind::BridgedKeepAlive => self.send_kept(&mut kept, &bodies),
                    _ => self.send(kind, &bodies),
                };
                let resetting =
                    reset_before || resets.on.load(Ordering::SeqCst) || resets.epoch.load(Ordering::SeqCst) != epoch;
                tally.sent.fetch_add(1, Ordering::Relaxed);
                if kind.counted() {
                    tally.counted.fetch_add(1, Ordering::Relaxed);
                }
                if status >= 500 {
                    tally.server_errors.fetch_add(1, Ordering::Relaxed);
                }
                *tally.by_kind.lock().unwrap().entry((kind, status)).or_default() += 1;
                if !kind.allows(status, resetting) {
                    tally.unexpected.fetch_add(1, Ordering::Relaxed);
                    let mut examples = tally.examples.lock().unwrap();
                    if examples.len() < 20 {
                        examples.push(format!("{kind:?}: {status}"));
                    }
                }
            }
        }
    }

    /// A bridged refresh on the kept connection, opened when there is none;
    /// dropped when Envoy says `connection: close` (it drains it).
    fn send_kept(&self, kept: &mut Option<http1::Connection>, bodies: &tokens::Bodies) -> u16 {
        if kept.is_none() {
            *kept = http1::Connection::open(self.held_port).ok();
        }
        let Some(connection) = kept else { return 0 };
        let request = form_post(TOKEN_PATH, &[("x-soak-cluster", "standin")], &bodies.bridged);
        let response = connection.send(&request).ok().and_then(|()| connection.read_response());
        let closing = response
            .as_ref()
            .is_none_or(|r| r.message.header("connection") == Some("close"));
        if closing {
            *kept = None;
        }
        response.map_or(0, |r| r.status)
    }

    /// Sends one request of `kind`; its status (0: none).
    fn send(&self, kind: Kind, bodies: &tokens::Bodies) -> u16 {
        let port = if kind.held() {
            self.held_port
        } else {
            self.streamed_port
        };
        let standin = [("x-soak-cluster", "standin")];
        match kind {
            Kind::BridgedH2 | Kind::BridgedH2Held => {
                let (first, second) = bodies.bridged.split_at(bodies.bridged.len() / 2);
                h2client::Post {
                    authority: "keycloak.test",
                    path: TOKEN_PATH,
                    headers: &standin,
                    pieces: &[first, second],
                    trailers: None,
                }
                .try_send(port)
                .map_or(0, |r| r.status)
            }
            Kind::Abandoned | Kind::AbandonedHeld => {
                let mut request = form_post(TOKEN_PATH, &standin, &bodies.bridged);
                // Declares 1000 bytes more than it sends, then goes.
                let declared = format!("content-length: {}\r\n", bodies.bridged.len());
                let more = format!("content-length: {}\r\n", bodies.bridged.len() + 1000);
                request = String::from_utf8(request)
                    .unwrap()
                    .replacen(&declared, &more, 1)
                    .into_bytes();
                if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                    let _ = stream.write_all(&request);
                    let _ = stream.flush();
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                0
            }
            _ => {
                let request = match kind {
                    Kind::Bridged | Kind::BridgedHeld => form_post(TOKEN_PATH, &standin, &bodies.bridged),
                    Kind::BridgedChunked => String::from_utf8(chunked_form_post(TOKEN_PATH, &bodies.bridged, 40))
                        .unwrap()
                        .replacen("host: keycloak.test\r\n", "host: keycloak.test\r\nx-soak-cluster: standin\r\n", 1)
                        .into_bytes(),
                    Kind::PushedClient => form_post(TOKEN_PATH, &standin, &bodies.pushed_client),
                    Kind::SameClient => form_post(TOKEN_PATH, &standin, &bodies.same_client),
                    Kind::Ambiguous => String::from_utf8(form_post(TOKEN_PATH, &standin, &bodies.bridged))
                        .unwrap()
                        .replacen(
                            "content-type: application/x-www-form-urlencoded\r\n",
                            "content-type: application/x-www-form-urlencoded; charset=iso-8859-1\r\n",
                            1,
                        )
                        .into_bytes(),
                    Kind::Oversized | Kind::OversizedHeld => form_post(TOKEN_PATH, &standin, &bodies.oversized),
                    _ => b"GET /realms/demo/.well-known/openid-configuration HTTP/1.1\r\nhost: keycloak.test\r\nx-soak-cluster: standin\r\n\r\n".to_vec(),
                };
                http1::Connection::open(port)
                    .ok()
                    .and_then(|mut c| {
                        c.send(&request).ok()?;
                        c.read_response()
                    })
                    .map_or(0, |r| r.status)
            }
        }
    }
}
