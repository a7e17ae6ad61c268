//! azp-bridge's per-request work, natively: `policy::plan` on the headers and
//! `policy::decide` (form parse, JWS payload decode, azp lookup, rewrite) on a
//! ~1 KB refresh body, plus the verdict's log line that the filter formats on
//! every token request. Bodies are the ones the Envoy benchmark sends.
//! Times are CPU time of the benchmarking thread (see src/lib.rs).

use azp_bridge::config::{self, Config};
use azp_bridge::endpoint::{Endpoint, Target};
use azp_bridge::policy::{self, CallerHeader, HeadPlan, Inspection, Outcome, PassReason, RequestHeaders};
use azp_bridge_native_bench::criterion_cpu::CpuTime;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

/// The plugin configuration bench/run.sh gives Envoy.
const PLUGIN_CONFIG: &str = r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret":"bench-Secret/+&=","allowed_callers":["mobile","spa"],"realms":["demo"]},{"client_id":"reporting","client_secret":"rep0rting-secret","allowed_callers":["mobile"]}]}"#;

const REWRITE: &[u8] = include_bytes!("../../fixtures/rewrite.form");
const PASS: &[u8] = include_bytes!("../../fixtures/pass.form");

struct Headers(Vec<(&'static str, Vec<u8>)>);

impl RequestHeaders for Headers {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_slice())
    }

    fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(n, _)| *n == name).count()
    }
}

fn config() -> Config {
    config::parse(PLUGIN_CONFIG.as_bytes(), &|_| None).expect("bench configuration parses")
}

fn inspection() -> Inspection {
    Inspection {
        target: Target {
            endpoint: Endpoint::Token,
            realm: "demo".into(),
        },
        caller: CallerHeader::None,
        has_content_length: true,
    }
}

fn expected_rewrite() -> Vec<u8> {
    let body = std::str::from_utf8(REWRITE).unwrap();
    let kept: Vec<&str> = body.split('&').filter(|p| !p.starts_with("client_id=")).collect();
    format!("{}&client_id=admin&client_secret=bench-Secret%2F%2B%26%3D", kept.join("&")).into_bytes()
}

fn benches(c: &mut Criterion<CpuTime>) {
    let config = config();
    let inspection = inspection();

    // The cases are what they claim to be.
    match policy::decide(&config, &inspection, REWRITE).outcome {
        Outcome::Rewrite(r) => assert_eq!(r.body, expected_rewrite()),
        other => panic!("rewrite body: {other:?}"),
    }
    assert_eq!(
        policy::decide(&config, &inspection, PASS).outcome,
        Outcome::Pass(PassReason::SameClient)
    );

    let mut group = c.benchmark_group("decide");
    group.throughput(criterion::Throughput::Bytes(REWRITE.len() as u64));
    group.bench_function("rewrite_1k", |b| {
        b.iter(|| policy::decide(black_box(&config), black_box(&inspection), black_box(REWRITE)))
    });
    group.bench_function("pass_same_client_1k", |b| {
        b.iter(|| policy::decide(black_box(&config), black_box(&inspection), black_box(PASS)))
    });
    group.finish();

    let token_headers = Headers(vec![
        (":method", b"POST".to_vec()),
        (":path", b"/realms/demo/protocol/openid-connect/token".to_vec()),
        ("content-type", b"application/x-www-form-urlencoded".to_vec()),
        ("content-length", REWRITE.len().to_string().into_bytes()),
    ]);
    let other_headers = Headers(vec![
        (":method", b"POST".to_vec()),
        (":path", b"/api/orders".to_vec()),
        ("content-type", b"application/x-www-form-urlencoded".to_vec()),
        ("content-length", REWRITE.len().to_string().into_bytes()),
    ]);
    assert!(matches!(policy::plan(&config, &token_headers), HeadPlan::Inspect(_)));
    assert_eq!(policy::plan(&config, &other_headers), HeadPlan::Ignore);
    let mut group = c.benchmark_group("plan");
    group.bench_function("token_request", |b| {
        b.iter(|| policy::plan(black_box(&config), black_box(&token_headers)))
    });
    group.bench_function("other_post", |b| {
        b.iter(|| policy::plan(black_box(&config), black_box(&other_headers)))
    });
    group.finish();

    // Where decide's time goes: its two parsers on the same body.
    let token = azp_bridge::form::parse(REWRITE)
        .unwrap()
        .iter()
        .find(|p| p.name == b"refresh_token")
        .map(|p| p.value().into_owned())
        .unwrap();
    let mut group = c.benchmark_group("parts");
    group.bench_function("form_parse_1k", |b| b.iter(|| azp_bridge::form::parse(black_box(REWRITE))));
    group.bench_function("token_claims", |b| b.iter(|| azp_bridge::token::claims(black_box(&token))));
    group.finish();

    // The filter formats this line for every token request (debug!), whatever
    // Envoy's log level: proxy-wasm's log level is set to Trace.
    let verdict = policy::decide(&config, &inspection, REWRITE);
    let mut group = c.benchmark_group("log");
    group.bench_function("describe_verdict", |b| {
        b.iter(|| black_box(&verdict).describe(black_box(&config), black_box(&inspection.target)))
    });
    group.finish();
}

criterion_group! {
    name = benches_group;
    // CPU time, not wall time: the machine may be shared.
    config = Criterion::default().with_measurement(CpuTime);
    targets = benches
}
criterion_main!(benches_group);
