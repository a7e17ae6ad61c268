//! How azp-bridge's cost grows with its configuration, and what a signed
//! client assertion costs: `on_configure`'s parse of 10,000 entries (5,000
//! realms x 2 clients), the decision with 10,000 entries against one, and
//! HS256 / ES256 minting. CPU time of the benchmarking thread.

use azp_bridge::assertion;
use azp_bridge::config::{self, Config};
use azp_bridge::policy;
use azp_bridge_native_bench::criterion_cpu::CpuTime;
use azp_bridge_native_bench::tenants::{entries, scale_refreshes, signing};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn benches(c: &mut Criterion<CpuTime>) {
    let big_json = entries(5000);
    let parse = |json: &str| -> Config { config::parse(json.as_bytes(), &|_| None).expect("parses") };
    let (one, big) = (parse(&entries(1)), parse(&big_json));
    assert_eq!(big.clients.len(), 10_000);
    let [(one_inspection, one_body), (big_inspection, big_body)] = scale_refreshes(&one, &big);
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

    let (hs, es, ed, claims) = signing();
    let mut group = c.benchmark_group("sign");
    group.bench_function("hs256", |b| {
        b.iter(|| assertion::mint(black_box(&hs), None, black_box(&claims)))
    });
    group.bench_function("es256", |b| {
        b.iter(|| assertion::mint(black_box(&es), Some("k"), black_box(&claims)))
    });
    group.bench_function("eddsa", |b| {
        b.iter(|| assertion::mint(black_box(&ed), Some("k"), black_box(&claims)))
    });
    group.finish();
}

criterion_group! {
    name = scale;
    config = Criterion::default().with_measurement(CpuTime);
    targets = benches
}
criterion_main!(scale);
