//! What a trapped VM does under each Envoy `failure_policy`, shown with a
//! build that traps on request (the `test-trap` feature, never shipped).
//! The shipped configuration uses FAIL_RELOAD: see README ("Failure policy").

use crate::support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::time::{Duration, Instant};
use support::http1::{self, form_post};
use support::upstream::Upstream;
use support::EnvoySpec;

use support::TOKEN_PATH;
const CONFIG: &str = r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret":"s3cret","allowed_callers":["mobile"]}]}"#;

fn refresh_body() -> String {
    let payload = r#"{"iss":"http://k/realms/demo","azp":"admin","typ":"Refresh"}"#;
    format!(
        "grant_type=refresh_token&client_id=mobile&refresh_token=h.{}.s",
        URL_SAFE_NO_PAD.encode(payload)
    )
}

fn rewritten(body: &str) -> String {
    let without_caller = body.replace("&client_id=mobile", "");
    format!("{without_caller}&client_id=admin&client_secret=s3cret")
}

struct AfterTrap {
    trap_status: u16,
    /// Status of a refresh sent right after the trap, and whether it was rewritten.
    next: (u16, Option<bool>),
    /// Whether a later refresh is rewritten again within 10 s.
    recovers: bool,
    log: String,
}

fn trap_under(policy: &str) -> AfterTrap {
    let upstream = Upstream::start();
    let envoy = EnvoySpec::new(CONFIG, upstream.port)
        .wasm(support::trapping_wasm_path())
        .edit("failure_policy: FAIL_RELOAD", &format!("failure_policy: {policy}"))
        .start();
    let body = refresh_body();
    // The VM works before the trap.
    assert_eq!(
        http1::exchange(envoy.port, &form_post(TOKEN_PATH, &[], body.as_bytes())).status,
        200
    );
    assert_eq!(upstream.single().body_str(), rewritten(&body));

    let trap = http1::exchange(
        envoy.port,
        &form_post(TOKEN_PATH, &[("x-azp-bridge-test-trap", "1")], body.as_bytes()),
    );
    let forwarded_before = upstream.requests().len();
    let next = http1::exchange(envoy.port, &form_post(TOKEN_PATH, &[], body.as_bytes()));
    std::thread::sleep(Duration::from_millis(100));
    let requests = upstream.requests();
    let next_rewritten =
        (requests.len() > forwarded_before).then(|| requests.last().unwrap().body_str() == rewritten(&body));

    let deadline = Instant::now() + Duration::from_secs(10);
    let recovers = loop {
        let before = upstream.requests().len();
        let resp = http1::exchange(envoy.port, &form_post(TOKEN_PATH, &[], body.as_bytes()));
        std::thread::sleep(Duration::from_millis(50));
        let requests = upstream.requests();
        if resp.status == 200 && requests.len() > before && requests.last().unwrap().body_str() == rewritten(&body) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "{policy}: trap {} next {} {next_rewritten:?} recovers {recovers}",
        trap.status, next.status
    );
    AfterTrap {
        trap_status: trap.status,
        next: (next.status, next_rewritten),
        recovers,
        log: envoy.wait_log("azp-bridge panicked at"),
    }
}

#[test]
fn fail_closed_answers_503_until_envoy_restarts() {
    let after = trap_under("FAIL_CLOSED");
    assert_eq!(after.trap_status, 503);
    assert_eq!(after.next, (503, None), "later requests never reach Keycloak");
    assert!(!after.recovers);
    assert!(
        !after.log.contains("deliberate trap"),
        "the panic hook logs no message data"
    );
}

#[test]
fn fail_open_skips_the_filter_so_refreshes_go_unchanged() {
    let after = trap_under("FAIL_OPEN");
    assert_eq!(after.trap_status, 503);
    assert_eq!(after.next, (200, Some(false)), "forwarded, but not rewritten");
    assert!(!after.recovers, "the bridge stays off until Envoy restarts");
}

#[test]
fn fail_reload_restarts_the_vm_and_the_bridge_comes_back() {
    let after = trap_under("FAIL_RELOAD");
    assert_eq!(after.trap_status, 503);
    // The request right after the trap may still meet the dead VM (reload backoff).
    assert!(after.recovers, "no rewrite within 10 s of the trap:\n{}", after.log);
}
