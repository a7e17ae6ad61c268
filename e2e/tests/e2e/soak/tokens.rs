//! The soak's plugin configurations and the request bodies the stand-in load
//! sends: made-up refresh tokens (the filter reads `azp` and `iss` without
//! verifying; the stand-in does not check them either).

use crate::support::keycloak::{ADMIN_CLIENT, ADMIN_CLIENT_SECRET, MOBILE_CLIENT};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The client every other push adds and the next one removes.
pub const PUSHED_CLIENT: &str = "soak-pushed-client";
pub const PUSHED_SECRET: &str = "soak-pushed-secret-CHANGE-ME";
/// Only in the refused configuration: it must not reach a log either.
pub const REFUSED_SECRET: &str = "soak-refused-secret-CHANGE-ME";
pub const MAX_BODY_BYTES: usize = 2048;

/// A good configuration for one listener; `pushed`: with [`PUSHED_CLIENT`].
pub fn plugin(pushed: bool, hold_headers: bool) -> String {
    let admin = format!(
        r#"{{"client_id":"{ADMIN_CLIENT}","client_secret":"{ADMIN_CLIENT_SECRET}","allowed_callers":["{MOBILE_CLIENT}"]}}"#
    );
    let extra = if pushed {
        format!(
            r#",{{"client_id":"{PUSHED_CLIENT}","client_secret":"{PUSHED_SECRET}","allowed_callers":["{MOBILE_CLIENT}"]}}"#
        )
    } else {
        String::new()
    };
    format!(
        r#"{{"upstream_clusters":["keycloak","standin"],"max_body_bytes":{MAX_BODY_BYTES},"hold_headers":{hold_headers},"clients":[{admin}{extra}]}}"#
    )
}

/// A configuration the module refuses: a client without `allowed_callers`.
pub fn refused_plugin() -> String {
    format!(
        r#"{{"upstream_clusters":["keycloak","standin"],"clients":[{{"client_id":"{ADMIN_CLIENT}","client_secret":"{REFUSED_SECRET}"}}]}}"#
    )
}

/// A refresh token's shape with these claims, signature made up.
pub fn fake_token(azp: &str) -> String {
    let payload = format!(r#"{{"iss":"http://keycloak.test/realms/demo","azp":"{azp}","typ":"Refresh"}}"#);
    format!(
        "eyJhbGciOiJIUzI1NiJ9.{}.c29hay1zaWduYXR1cmU",
        URL_SAFE_NO_PAD.encode(payload)
    )
}

pub fn refresh_body(caller: &str, token: &str) -> Vec<u8> {
    format!("grant_type=refresh_token&client_id={caller}&refresh_token={token}").into_bytes()
}

pub struct Bodies {
    pub bridged: Vec<u8>,
    pub pushed_client: Vec<u8>,
    pub same_client: Vec<u8>,
    pub oversized: Vec<u8>,
}

impl Bodies {
    pub fn new() -> Bodies {
        let bridged = refresh_body(MOBILE_CLIENT, &fake_token(ADMIN_CLIENT));
        let mut oversized = bridged.clone();
        oversized.extend_from_slice(b"&padding=");
        oversized.resize(MAX_BODY_BYTES + 1000, b'x');
        Bodies {
            bridged,
            pushed_client: refresh_body(MOBILE_CLIENT, &fake_token(PUSHED_CLIENT)),
            same_client: refresh_body(MOBILE_CLIENT, &fake_token(MOBILE_CLIENT)),
            oversized,
        }
    }

    /// The whole tokens the load sends (none may reach a log).
    pub fn tokens() -> Vec<String> {
        [ADMIN_CLIENT, PUSHED_CLIENT, MOBILE_CLIENT]
            .iter()
            .map(|azp| fake_token(azp))
            .collect()
    }
}
