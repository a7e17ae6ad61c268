//! The whole decision and rewrite. The first byte picks the endpoint, realm,
//! header mode and caller header; up to the first newline is an
//! `Authorization` value; the rest is the body.
#![no_main]
#[path = "../../tests/support/invariants.rs"]
mod invariants;

use azp_bridge::config::{self, Config};
use azp_bridge::endpoint::{Endpoint, Target};
use azp_bridge::policy::{CallerHeader, Inspection};
use std::sync::OnceLock;

fn configs() -> &'static [Config; 2] {
    static CONFIGS: OnceLock<[Config; 2]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let post = r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret":"Adm1n&Secret=+/","allowed_callers":["mobile","web app"],"realms":["demo"]}]}"#;
        let hold = r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret":"Adm1n&Secret=+/","allowed_callers":["mobile"]},{"client_id":"basic admin","client_secret":"B4sic:Secret%","auth_method":"client_secret_basic","allowed_callers":["mobile"]}],"hold_headers":true}"#;
        [
            config::parse(post.as_bytes(), &|_| None).unwrap(),
            config::parse(hold.as_bytes(), &|_| None).unwrap(),
        ]
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let endpoint = match selector % 3 {
        0 => Endpoint::Token,
        1 => Endpoint::Revoke,
        _ => Endpoint::Logout,
    };
    let realm = if selector & 0x04 == 0 { "demo" } else { "other" };
    let config = &configs()[usize::from(selector & 0x08 != 0)];
    let (caller, body) = if selector & 0x10 != 0 {
        match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => (CallerHeader::from_authorization(Some(&rest[..nl])), &rest[nl + 1..]),
            None => (CallerHeader::None, rest),
        }
    } else {
        (CallerHeader::None, rest)
    };
    let inspection = Inspection {
        target: Target {
            endpoint,
            realm: realm.to_owned(),
        },
        caller,
        has_content_length: true,
    };
    invariants::check_decide(config, &inspection, body);
});
