//! `policy::decide` in a plain timing loop, built natively or for
//! wasm32-wasip1 (then run in V8 by `wasi.mjs`, the engine Envoy embeds), so
//! the decision's cost inside the VM can be set against its native cost.
//! Prints `name,median_ns` lines: CPU time per call, median of 21 batches.

use azp_bridge::config;
use azp_bridge::endpoint::{Endpoint, Target};
use azp_bridge::policy::{self, CallerHeader, Inspection, Outcome};
use std::hint::black_box;
use azp_bridge_native_bench::cpu_time_ns;

const PLUGIN_CONFIG: &str = r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret":"bench-Secret/+&=","allowed_callers":["mobile","spa"],"realms":["demo"]},{"client_id":"reporting","client_secret":"rep0rting-secret","allowed_callers":["mobile"]}]}"#;
const REWRITE: &[u8] = include_bytes!("../../../fixtures/rewrite.form");
const PASS: &[u8] = include_bytes!("../../../fixtures/pass.form");

fn main() {
    let config = config::parse(PLUGIN_CONFIG.as_bytes(), &|_| None).expect("configuration parses");
    let inspection = Inspection {
        target: Target {
            endpoint: Endpoint::Token,
            realm: "demo".into(),
        },
        caller: CallerHeader::None,
        has_content_length: true,
    };
    assert!(matches!(policy::decide(&config, &inspection, REWRITE).outcome, Outcome::Rewrite(_)));
    assert!(matches!(policy::decide(&config, &inspection, PASS).outcome, Outcome::Pass(_)));
    let iterations: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    for (name, body) in [("decide/rewrite_1k", REWRITE), ("decide/pass_same_client_1k", PASS)] {
        let mut batches = Vec::new();
        for batch in 0..24 {
            let start = cpu_time_ns();
            for _ in 0..iterations {
                black_box(policy::decide(black_box(&config), black_box(&inspection), black_box(body)));
            }
            // The first batches warm up (and let V8 tier up).
            if batch >= 3 {
                batches.push((cpu_time_ns() - start) as f64 / f64::from(iterations));
            }
        }
        batches.sort_by(f64::total_cmp);
        println!("{name},{:.1}", batches[batches.len() / 2]);
    }
}
