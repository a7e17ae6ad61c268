//! `make soak`: the filter for a long while (SOAK_MINUTES, default 30) in a
//! real Envoy, under a mixed load, through configuration pushes, Keycloak
//! restarts and upstream resets; Envoy's memory, the VMs' memory, requests
//! per second and errors sampled every 10 s. Fails unless memory stays flat
//! after warm-up, every answer is one its request may get, no log holds a
//! secret, every token request sent is counted exactly once across the
//! pushes, and every real bridged refresh was accepted by Keycloak.
//! Ignored unless asked for; `make test` runs it for 2 minutes.
//!
//! Results (samples.csv, events.csv, soak.png, REPORT.md) go to SOAK_RESULTS
//! (relative to the repository; default target/soak/; `make soak` writes
//! bench/results/soak/).

mod envoy;
mod keycloak_refreshes;
mod plot;
mod report;
mod samples;
mod standin;
mod tokens;
mod traffic;

use crate::support::keycloak::{Keycloak, ADMIN_CLIENT_SECRET};
use crate::support::repo_root;
use envoy::{SoakEnvoy, DRAIN_SECONDS};
use keycloak_refreshes::{Driver, KeycloakState, Refreshes};
use samples::{Event, Sample, EVERY_SECONDS};
use standin::StandIn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use traffic::{Resets, Tally, Traffic};

/// Load threads against the stand-in (closed loop: each waits for its
/// answer, so the rate follows what the 2 shared cores give).
const LOAD_THREADS: usize = 3;
/// Envoy workers: one VM each.
const WORKERS: u32 = 2;

/// The fault schedule, in seconds into each minute.
const REFUSED_PUSH_AT: u64 = 20;
const GOOD_PUSH_AT: u64 = 25;
const RESETS_FROM: u64 = 40;
const RESETS_FOR: u64 = 5;

/// The load goes on at least this long after Keycloak's last restart.
const AFTER_RESTART_SECONDS: u64 = 20;

/// When Keycloak is stopped (seconds into the run): every 10 minutes from
/// the third, or once at 40 % of a shorter run; each restart must end
/// before the last minute.
fn keycloak_stops(run: u64) -> Vec<u64> {
    let mut at: Vec<u64> = (0..).map(|k| 180 + 600 * k).take_while(|t| t + 120 < run).collect();
    if at.is_empty() {
        at.push(run * 2 / 5);
    }
    at
}

struct Shared {
    started: Instant,
    stop: AtomicBool,
    resets: Resets,
    keycloak: KeycloakState,
    tally: Tally,
    refreshes: Refreshes,
    events: Mutex<Vec<Event>>,
}

impl Shared {
    fn mark(&self, what: &'static str) {
        let at = self.started.elapsed().as_secs_f64();
        println!("soak: {at:>6.0} s {what}");
        self.events.lock().unwrap().push(Event { at, what });
    }

    fn answered(&self) -> u64 {
        self.tally.sent.load(Ordering::Relaxed) + self.refreshes.sent.load(Ordering::Relaxed)
    }

    fn unexpected(&self) -> u64 {
        self.tally.unexpected.load(Ordering::Relaxed) + self.refreshes.unexpected.load(Ordering::Relaxed)
    }
}

#[test]
#[ignore = "long: make soak (SOAK_MINUTES, default 30); make test runs SOAK_MINUTES=2"]
fn soak() {
    let minutes: f64 = std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(30.0);
    let run = (minutes * 60.0) as u64;
    // A relative SOAK_RESULTS is the repository's, as make sees it.
    let results = repo_root().join(std::env::var("SOAK_RESULTS").unwrap_or_else(|_| "target/soak".to_owned()));
    std::fs::create_dir_all(&results).unwrap();

    let keycloak = Keycloak::start();
    let standin = StandIn::start();
    let envoy = SoakEnvoy::start(
        keycloak.port,
        standin.port,
        (&tokens::plugin(false, false), &tokens::plugin(false, true)),
        WORKERS,
    );
    let traffic = Traffic {
        streamed_port: envoy.streamed_port,
        held_port: envoy.held_port,
    };
    let driver = Driver {
        envoy_ports: [envoy.streamed_port, envoy.held_port],
        keycloak_port: keycloak.port,
        pace: Duration::from_millis(200),
    };
    let shared = Shared {
        started: Instant::now(),
        stop: AtomicBool::new(false),
        resets: Resets {
            on: standin.resetting.clone(),
            epoch: Default::default(),
        },
        keycloak: KeycloakState::default(),
        tally: Tally::default(),
        refreshes: Refreshes::default(),
        events: Mutex::new(Vec::new()),
    };
    println!(
        "soak: {minutes} min, {LOAD_THREADS} load threads, {WORKERS} workers, results in {}",
        results.display()
    );

    let samples: Vec<Sample> = std::thread::scope(|s| {
        // A failed fault (a push Envoy neither took nor refused) unwinds
        // through here: the threads must stop too, or the scope waits forever.
        let _stop = StopOnDrop(&shared.stop);
        for _ in 0..LOAD_THREADS {
            s.spawn(|| traffic.run(&shared.stop, &shared.resets, &shared.tally));
        }
        s.spawn(|| driver.run(&shared.stop, &shared.keycloak, &shared.refreshes));
        let restarts = s.spawn(|| {
            for at in keycloak_stops(run) {
                if !sleep_until(&shared, at) {
                    return;
                }
                shared.keycloak.down.store(true, Ordering::SeqCst);
                shared.keycloak.incarnation.fetch_add(1, Ordering::SeqCst);
                keycloak.stop();
                shared.mark("keycloak stopped");
                std::thread::sleep(Duration::from_secs(10));
                keycloak.restart();
                shared.keycloak.down.store(false, Ordering::SeqCst);
                shared.mark("keycloak ready");
            }
        });
        let sampler = s.spawn(|| sample(&shared, &envoy));
        faults(&shared, &envoy, run);
        // A restart that ends late still gets real refreshes after it.
        restarts.join().unwrap();
        let ready = shared
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.what == "keycloak ready")
            .map(|e| e.at as u64)
            .max();
        sleep_until(&shared, ready.map_or(0, |at| at + AFTER_RESTART_SECONDS));
        shared.stop.store(true, Ordering::SeqCst);
        sampler.join().unwrap()
    });

    // The old listeners' VMs hand over what they counted (a tick a second,
    // and when their root context goes): wait for the last drain.
    std::thread::sleep(Duration::from_secs(DRAIN_SECONDS + 3));
    let counters = envoy.stats("azp_bridge");
    let events = shared.events.lock().unwrap().clone();
    std::fs::write(results.join("samples.csv"), samples::csv(&samples)).unwrap();
    std::fs::write(results.join("events.csv"), samples::events_csv(&events)).unwrap();
    let plotted = plot::draw(&results, &events);

    let mut secrets: Vec<String> = vec![
        ADMIN_CLIENT_SECRET.to_owned(),
        tokens::PUSHED_SECRET.to_owned(),
        tokens::REFUSED_SECRET.to_owned(),
    ];
    secrets.extend(tokens::Bodies::tokens());
    secrets.extend(shared.refreshes.tokens.lock().unwrap().iter().cloned());
    let logs = [
        ("envoy", std::fs::read_to_string(envoy.log_path()).unwrap_or_default()),
        ("keycloak", keycloak.log()),
    ];
    let report = report::Report::new(
        minutes,
        i64::from(WORKERS) + 1,
        &samples,
        &events,
        &counters,
        &shared.tally,
        &shared.refreshes,
        &logs,
        &secrets,
    );
    std::fs::write(results.join("REPORT.md"), report.markdown()).unwrap();
    println!("{}", report.markdown());
    plotted.expect("the plot is drawn");
    report.assert_passed();
}

/// Stops the run when dropped, also by a panic.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Sleeps until `at` seconds into the run; false if the run stopped first.
fn sleep_until(shared: &Shared, at: u64) -> bool {
    while shared.started.elapsed() < Duration::from_secs(at) {
        if shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    true
}

/// Pushes (a refused configuration, then a good one that adds or removes a
/// client) and upstream resets, each minute, until the run's end.
fn faults(shared: &Shared, envoy: &SoakEnvoy, run: u64) {
    let mut pushed_client = false;
    for minute in 0.. {
        let base = minute * 60;
        if base >= run {
            return;
        }
        for (offset, step) in [
            (REFUSED_PUSH_AT, 0),
            (GOOD_PUSH_AT, 1),
            (RESETS_FROM, 2),
            (RESETS_FROM + RESETS_FOR, 3),
        ] {
            if base + offset >= run || !sleep_until(shared, base + offset) {
                return;
            }
            match step {
                0 => {
                    let refused = tokens::refused_plugin();
                    assert!(!envoy.push((&refused, &refused)), "a refused configuration was taken");
                    shared.mark("push refused");
                }
                1 => {
                    pushed_client = !pushed_client;
                    let (streamed, held) = (
                        tokens::plugin(pushed_client, false),
                        tokens::plugin(pushed_client, true),
                    );
                    assert!(envoy.push((&streamed, &held)), "a good configuration was refused");
                    shared.mark("push");
                }
                2 => {
                    shared.resets.on.store(true, Ordering::SeqCst);
                    shared.resets.epoch.fetch_add(1, Ordering::SeqCst);
                    shared.mark("upstream resets");
                }
                _ => {
                    shared.resets.on.store(false, Ordering::SeqCst);
                    shared.resets.epoch.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }
}

/// Every 10 s until the run stops.
fn sample(shared: &Shared, envoy: &SoakEnvoy) -> Vec<Sample> {
    let mut out = Vec::new();
    let (mut answered, mut unexpected, mut server_errors, mut at) = (0, 0, 0, 0.0);
    for n in 1.. {
        if !sleep_until(shared, n * EVERY_SECONDS) {
            return out;
        }
        let now = shared.started.elapsed().as_secs_f64();
        let wasm = envoy.stats("wasm");
        let (a, u, e) = (
            shared.answered(),
            shared.unexpected(),
            shared.tally.server_errors.load(Ordering::Relaxed) + shared.refreshes.while_down.load(Ordering::Relaxed),
        );
        out.push(Sample {
            at: now,
            rss_kib: envoy.rss_kib(),
            vm_bytes: wasm.get("wasmcustom.azp_bridge.memory_bytes").copied().unwrap_or(0),
            vms: wasm.get("wasm.envoy.wasm.runtime.v8.active").copied().unwrap_or(0),
            rps: (a - answered) as f64 / (now - at),
            errors: u - unexpected,
            server_errors: e - server_errors,
        });
        let last = out.last().unwrap();
        println!(
            "soak: {:>6.0} s RSS {} KiB, VM memory {} bytes ({} VMs), {:.0} rps, {} unexpected, {} 5xx",
            last.at, last.rss_kib, last.vm_bytes, last.vms, last.rps, last.errors, last.server_errors
        );
        if n == 1 || std::env::var_os("SOAK_WASM_STATS").is_some() {
            println!("soak: wasm stats {wasm:?}");
        }
        (answered, unexpected, server_errors, at) = (a, u, e, now);
    }
    out
}
