//! Real bridged refreshes against the real Keycloak, at a steady pace, for
//! the whole run: a login straight at Keycloak, then the caller refreshes
//! the target client's token through Envoy, again and again. A restart
//! loses Keycloak's sessions (its database is in memory): a token from
//! before it gets a 400 once, and the loop logs in again.

use super::tokens::refresh_body;
use crate::support::http1::{self, form_body, form_post};
use crate::support::keycloak::{ADMIN_CLIENT, ADMIN_CLIENT_SECRET, MOBILE_CLIENT};
use crate::support::TOKEN_PATH;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Keycloak's state, as the fault schedule sets it.
#[derive(Default)]
pub struct KeycloakState {
    /// Stopped, or not yet ready again.
    pub down: AtomicBool,
    /// Bumped at every stop: sessions of an older one are gone.
    pub incarnation: AtomicU64,
}

#[derive(Default)]
pub struct Refreshes {
    /// Refreshes sent through Envoy (each one a token request the filter counts).
    pub sent: AtomicU64,
    /// Answered 200 with tokens by Keycloak.
    pub accepted: AtomicU64,
    /// 503 while Keycloak was down.
    pub while_down: AtomicU64,
    /// 400 for a session the last restart dropped.
    pub lost_to_restart: AtomicU64,
    pub unexpected: AtomicU64,
    pub examples: Mutex<Vec<String>>,
    /// Refresh tokens Keycloak issued (the last ones; none may reach a log).
    pub tokens: Mutex<Vec<String>>,
}

pub struct Driver {
    pub envoy_ports: [u16; 2],
    pub keycloak_port: u16,
    /// Pause between two refreshes: Keycloak's share of the load stays steady.
    pub pace: Duration,
}

fn post(port: u16, request: &[u8]) -> Option<(u16, serde_json::Value)> {
    let mut connection = http1::Connection::open(port).ok()?;
    connection.send(request).ok()?;
    let response = connection.read_response()?;
    Some((
        response.status,
        serde_json::from_slice(&response.body).unwrap_or_default(),
    ))
}

impl Driver {
    /// A fresh session of the target client, straight from Keycloak.
    fn login(&self) -> Option<String> {
        let body = form_body(&[
            ("grant_type", "password"),
            ("client_id", ADMIN_CLIENT),
            ("client_secret", ADMIN_CLIENT_SECRET),
            ("username", "alice"),
            ("password", "alice-password"),
        ]);
        match post(self.keycloak_port, &form_post(TOKEN_PATH, &[], &body))? {
            (200, json) => json["refresh_token"].as_str().map(str::to_owned),
            _ => None,
        }
    }

    pub fn run(&self, stop: &AtomicBool, keycloak: &KeycloakState, tally: &Refreshes) {
        let mut session: Option<(String, u64)> = None;
        let mut round = 0usize;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(self.pace);
            let Some((token, incarnation)) = session.clone() else {
                let incarnation = keycloak.incarnation.load(Ordering::SeqCst);
                if !keycloak.down.load(Ordering::SeqCst) {
                    session = self.login().map(|token| (token, incarnation));
                }
                continue;
            };
            round += 1;
            let port = self.envoy_ports[round % 2];
            let down_before = keycloak.down.load(Ordering::SeqCst);
            let request = form_post(
                TOKEN_PATH,
                &[("x-soak-cluster", "keycloak")],
                &refresh_body(MOBILE_CLIENT, &token),
            );
            let answer = post(port, &request);
            let down = down_before || keycloak.down.load(Ordering::SeqCst);
            let restarted = keycloak.incarnation.load(Ordering::SeqCst) != incarnation;
            tally.sent.fetch_add(1, Ordering::Relaxed);
            let status = answer.as_ref().map_or(0, |(status, _)| *status);
            let azp = answer
                .as_ref()
                .and_then(|(_, json)| json["access_token"].as_str())
                .and_then(|t| t.split('.').nth(1))
                .and_then(|p| {
                    use base64::Engine;
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok()
                })
                .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
                .and_then(|claims| claims["azp"].as_str().map(str::to_owned));
            match (status, answer) {
                (200, Some((_, json))) if azp.as_deref() == Some(ADMIN_CLIENT) => {
                    tally.accepted.fetch_add(1, Ordering::Relaxed);
                    if let Some(next) = json["refresh_token"].as_str() {
                        let mut tokens = tally.tokens.lock().unwrap();
                        if tokens.len() >= 200 {
                            tokens.remove(0);
                        }
                        tokens.push(next.to_owned());
                        session = Some((next.to_owned(), incarnation));
                    }
                }
                (503, _) if down => {
                    tally.while_down.fetch_add(1, Ordering::Relaxed);
                }
                // A session from before the restart: gone; log in again.
                (400 | 401, _) if restarted || down => {
                    tally.lost_to_restart.fetch_add(1, Ordering::Relaxed);
                    session = None;
                }
                (status, _) => {
                    tally.unexpected.fetch_add(1, Ordering::Relaxed);
                    let mut examples = tally.examples.lock().unwrap();
                    if examples.len() < 20 {
                        examples.push(format!("Keycloak refresh: {status} (azp {azp:?})"));
                    }
                    session = None;
                }
            }
        }
    }
}
