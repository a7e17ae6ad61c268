//! A whole token request with its `Content-Type` headers and body mutated
//! together: a rewrite happens only on the unambiguous subset (one plain
//! form type, at most `charset=utf-8`, an ASCII body of plain names), and the
//! decision's invariants hold. The first byte picks the header mode and the
//! number of `Content-Type` headers; each header is one line; the rest is
//! the body.
#![no_main]
#[path = "../../tests/support/invariants.rs"]
mod invariants;

use azp_bridge::config::{self, Config};
use std::sync::OnceLock;

fn configs() -> &'static [Config; 2] {
    static CONFIGS: OnceLock<[Config; 2]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let post = r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret":"Adm1n&Secret=+/","allowed_callers":["mobile"],"realms":["demo"]}]}"#;
        let hold = r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret":"Adm1n&Secret=+/","allowed_callers":["mobile"]}],"hold_headers":true}"#;
        [
            config::parse(post.as_bytes(), &|_| None).unwrap(),
            config::parse(hold.as_bytes(), &|_| None).unwrap(),
        ]
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let config = &configs()[usize::from(selector & 0x01 != 0)];
    let mut content_types: Vec<&[u8]> = Vec::new();
    for _ in 0..(1 + (selector >> 1) % 2) {
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            break;
        };
        content_types.push(&rest[..nl]);
        rest = &rest[nl + 1..];
    }
    invariants::check_request(config, &content_types, rest);
});
