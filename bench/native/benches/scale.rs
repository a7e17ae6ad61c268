//! How azp-bridge's cost grows with its configuration, and what a signed
//! client assertion costs: `on_configure`'s parse of 10,000 entries (5,000
//! realms x 2 clients), the decision with 10,000 entries against one, and
//! HS256 / ES256 minting. CPU time of the benchmarking thread.

use azp_bridge::assertion::{self, AssertionKey, Claims};
use azp_bridge::config::{self, Config};
use azp_bridge::endpoint::{Endpoint, Target};
use azp_bridge::policy::{self, CallerHeader, Inspection, Outcome};
use azp_bridge_native_bench::criterion_cpu::CpuTime;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const TEST_KEY: &str = include_str!("../../../tests/fixtures/es256-test-key.pem");

/// `realms` realms, each with a `portal-a` and a `portal-b` entry.
fn entries(realms: usize) -> String {
    let clients: Vec<String> = (0..realms)
        .flat_map(|r| {
            ["portal-a", "portal-b"].map(|id| {
                format!(r#"{{"client_id":"{id}","client_secret":"secret-{r}-{id}","allowed_callers":["spa"],"realms":["r{r}"]}}"#)
            })
        })
        .collect();
    format!(r#"{{"upstream_clusters":["keycloak"],"clients":[{}]}}"#, clients.join(","))
}

fn refresh(realm: &str) -> (Inspection, Vec<u8>) {
    let payload = format!(r#"{{"exp":1767225600,"iat":1767223800,"iss":"http://127.0.0.1:8080/realms/{realm}","aud":"http://127.0.0.1:8080/realms/{realm}","sub":"5d6f2c1a-8b3e-4f7a-9c2d-1e0f3a4b5c6d","typ":"Refresh","azp":"portal-b","sid":"0b6c1b4e-6a4e-4c6f-9d55-2f1c7e0d3a91","scope":"openid profile email"}}"#);
    let token = format!("eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.{}.c2lnbmF0dXJl", URL_SAFE_NO_PAD.encode(payload));
    let inspection = Inspection {
        target: Target {
            endpoint: Endpoint::Token,
            realm: realm.to_owned(),
        },
        caller: CallerHeader::None,
        has_content_length: true,
    };
    (inspection, format!("grant_type=refresh_token&client_id=spa&refresh_token={token}").into_bytes())
}

fn benches(c: &mut Criterion<CpuTime>) {
    let big_json = entries(5000);
    let parse = |json: &str| -> Config { config::parse(json.as_bytes(), &|_| None).expect("parses") };
    let (one, big) = (parse(&entries(1)), parse(&big_json));
    assert_eq!(big.clients.len(), 10_000);
    let (one_inspection, one_body) = refresh("r0");
    let (big_inspection, big_body) = refresh("r2500");
    for (config, inspection, body) in [(&one, &one_inspection, &one_body), (&big, &big_inspection, &big_body)] {
        assert!(matches!(policy::decide(config, inspection, body).outcome, Outcome::Rewrite(_)));
    }
    let mut group = c.benchmark_group("scale");
    group.sample_size(20);
    group.bench_function("configure_10000_entries", |b| b.iter(|| parse(black_box(&big_json))));
    group.finish();
    let mut group = c.benchmark_group("scale");
    group.bench_function("decide_1_entry", |b| {
        b.iter(|| policy::decide(black_box(&one), black_box(&one_inspection), black_box(&one_body)))
    });
    group.bench_function("decide_10000_entries", |b| {
        b.iter(|| policy::decide(black_box(&big), black_box(&big_inspection), black_box(&big_body)))
    });
    group.finish();

    let hs = AssertionKey::Hs256(b"0123456789abcdef0123456789abcdef".to_vec());
    let es = AssertionKey::es256_from_pem(TEST_KEY).expect("the test key");
    let claims = Claims {
        client_id: "portal-b",
        audience: "http://127.0.0.1:8080/realms/r0",
        now_seconds: 1_767_223_800,
        jti: [5; 16],
    };
    let mut group = c.benchmark_group("sign");
    group.bench_function("hs256", |b| b.iter(|| assertion::mint(black_box(&hs), None, black_box(&claims))));
    group.bench_function("es256", |b| b.iter(|| assertion::mint(black_box(&es), Some("k"), black_box(&claims))));
    group.finish();
}

criterion_group! {
    name = scale;
    config = Criterion::default().with_measurement(CpuTime);
    targets = benches
}
criterion_main!(scale);
