//! azp-bridge's per-request work in a plain timing loop, built natively or
//! for wasm32-wasip1 (then run in V8 by `wasi.mjs`, the engine Envoy embeds),
//! so its cost inside the VM can be set against its native cost: the
//! decision, the decision with 10,000 entries, minting a signed client
//! assertion (HS256, ES256), and `on_configure`'s parse of 10,000 entries.
//! Prints `name,median_ns` lines (CPU time per call, median of batches) and
//! `memory/NAME,kib` lines: the heap the parsed configuration keeps, counted
//! by the allocator (on wasm32 also how far the linear memory grew).

use azp_bridge::assertion;
use azp_bridge::config;
use azp_bridge::endpoint::{Endpoint, Target};
use azp_bridge::policy::{self, CallerHeader, Inspection, Outcome};
use azp_bridge_native_bench::cpu_time_ns;
use azp_bridge_native_bench::tenants::{entries, scale_refreshes, signing};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

const PLUGIN_CONFIG: &str = r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret":"bench-Secret/+&=","allowed_callers":["mobile","spa"],"realms":["demo"]},{"client_id":"reporting","client_secret":"rep0rting-secret","allowed_callers":["mobile"]}]}"#;
const REWRITE: &[u8] = include_bytes!("../../../fixtures/rewrite.form");
const PASS: &[u8] = include_bytes!("../../../fixtures/pass.form");

/// The system allocator, counting the bytes currently allocated.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The second argument, when given: only the benchmarks whose names start
/// with it run (`sign/` to compare signature builds).
static ONLY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// CPU time per call of `f`, the median of 21 batches of `iterations` calls
/// after 3 warm-up batches (which also let V8 tier up).
fn time(name: &str, iterations: u32, mut f: impl FnMut()) {
    if !name.starts_with(ONLY.get().map_or("", String::as_str)) {
        return;
    }
    let mut batches = Vec::new();
    for batch in 0..24 {
        let start = cpu_time_ns();
        for _ in 0..iterations {
            f();
        }
        if batch >= 3 {
            batches.push((cpu_time_ns() - start) as f64 / f64::from(iterations));
        }
    }
    batches.sort_by(f64::total_cmp);
    println!("{name},{:.1}", batches[batches.len() / 2]);
}

/// Linear memory pages (64 KiB) on wasm32; nothing natively.
fn memory_pages() -> Option<usize> {
    #[cfg(target_arch = "wasm32")]
    return Some(core::arch::wasm32::memory_size(0));
    #[cfg(not(target_arch = "wasm32"))]
    None
}

fn main() {
    let iterations: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    ONLY.get_or_init(|| std::env::args().nth(2).unwrap_or_default());

    let config = config::parse(PLUGIN_CONFIG.as_bytes(), &|_| None).expect("configuration parses");
    let inspection = Inspection {
        target: Target {
            endpoint: Endpoint::Token,
            realm: "demo".into(),
        },
        caller: CallerHeader::None,
        has_content_length: true,
    };
    assert!(matches!(
        policy::decide(&config, &inspection, REWRITE).outcome,
        Outcome::Rewrite(_)
    ));
    assert!(matches!(
        policy::decide(&config, &inspection, PASS).outcome,
        Outcome::Pass(_)
    ));
    for (name, body) in [("decide/rewrite_1k", REWRITE), ("decide/pass_same_client_1k", PASS)] {
        time(name, iterations, || {
            black_box(policy::decide(
                black_box(&config),
                black_box(&inspection),
                black_box(body),
            ));
        });
    }

    // How the cost grows with the configuration: 10,000 entries (5,000
    // realms x 2 clients) against one, and what on_configure's parse keeps.
    let big_json = entries(5000);
    let parse = |json: &str| config::parse(json.as_bytes(), &|_| None).expect("parses");
    let one = parse(&entries(1));
    let (pages_before, live_before) = (memory_pages(), LIVE.load(Ordering::Relaxed));
    let big = parse(&big_json);
    let (pages_after, live_after) = (memory_pages(), LIVE.load(Ordering::Relaxed));
    assert_eq!(big.clients.len(), 10_000);
    let [(one_inspection, one_body), (big_inspection, big_body)] = scale_refreshes(&one, &big);
    time("scale/decide_1_entry", iterations, || {
        black_box(policy::decide(
            black_box(&one),
            black_box(&one_inspection),
            black_box(&one_body),
        ));
    });
    time("scale/decide_10000_entries", iterations, || {
        black_box(policy::decide(
            black_box(&big),
            black_box(&big_inspection),
            black_box(&big_body),
        ));
    });
    time("scale/configure_10000_entries", 1, || {
        black_box(parse(black_box(&big_json)));
    });
    println!(
        "memory/configure_10000_entries_heap,{}",
        (live_after - live_before) / 1024
    );
    if let (Some(before), Some(after)) = (pages_before, pages_after) {
        println!("memory/configure_10000_entries_linear_growth,{}", (after - before) * 64);
    }
    drop(big);

    // One signed client assertion, as each rewritten request of a
    // client_secret_jwt or private_key_jwt client mints.
    let (hs, es, ed, claims) = signing();
    time("sign/hs256", (iterations / 4).max(1), || {
        let _ = black_box(assertion::mint(black_box(&hs), None, black_box(&claims)));
    });
    time("sign/es256", (iterations / 400).max(1), || {
        let _ = black_box(assertion::mint(black_box(&es), Some("k"), black_box(&claims)));
    });
    time("sign/eddsa", (iterations / 400).max(1), || {
        let _ = black_box(assertion::mint(black_box(&ed), Some("k"), black_box(&claims)));
    });
}
