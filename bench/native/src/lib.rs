//! CPU-time clock for the benchmarks: on a shared machine wall-clock time
//! also counts the time other processes held the CPU; this does not.

/// Nanoseconds of CPU time used so far by this thread (natively) or by this
/// process (wasm32-wasip1, where WASI offers no thread clock).
pub fn cpu_time_ns() -> u64 {
    imp::now()
}

#[cfg(target_os = "linux")]
mod imp {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

    pub fn now() -> u64 {
        let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid pointer to a timespec; the clock id exists on Linux.
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime");
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }
}

#[cfg(target_os = "wasi")]
mod imp {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn clock_time_get(id: u32, precision: u64, time: *mut u64) -> u16;
    }
    const CLOCK_PROCESS_CPUTIME_ID: u32 = 2;

    pub fn now() -> u64 {
        let mut t = 0u64;
        // SAFETY: a valid pointer to a u64; the clock id is WASI preview 1's.
        let errno = unsafe { clock_time_get(CLOCK_PROCESS_CPUTIME_ID, 1, &mut t) };
        assert_eq!(errno, 0, "clock_time_get");
        t
    }
}

#[cfg(not(any(target_os = "linux", target_os = "wasi")))]
mod imp {
    pub fn now() -> u64 {
        use std::sync::OnceLock;
        use std::time::Instant;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// A criterion measurement of CPU time (natively).
#[cfg(not(target_family = "wasm"))]
pub mod criterion_cpu {
    use criterion::measurement::{Measurement, ValueFormatter};
    use criterion::Throughput;

    pub struct CpuTime;

    impl Measurement for CpuTime {
        type Intermediate = u64;
        type Value = u64;

        fn start(&self) -> u64 {
            super::cpu_time_ns()
        }
        fn end(&self, start: u64) -> u64 {
            super::cpu_time_ns().saturating_sub(start)
        }
        fn add(&self, a: &u64, b: &u64) -> u64 {
            a + b
        }
        fn zero(&self) -> u64 {
            0
        }
        fn to_f64(&self, v: &u64) -> f64 {
            *v as f64
        }
        fn formatter(&self) -> &dyn ValueFormatter {
            &NanosFormatter
        }
    }

    struct NanosFormatter;

    impl ValueFormatter for NanosFormatter {
        fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
            let (factor, unit) = if typical < 1e3 {
                (1.0, "ns")
            } else if typical < 1e6 {
                (1e-3, "us")
            } else {
                (1e-6, "ms")
            };
            values.iter_mut().for_each(|v| *v *= factor);
            unit
        }
        fn scale_throughputs(&self, _typical: f64, throughput: &Throughput, values: &mut [f64]) -> &'static str {
            let per = match throughput {
                Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n as f64,
                Throughput::Elements(n) => *n as f64,
            };
            values.iter_mut().for_each(|v| *v = per * 1e9 / *v);
            "units/s (cpu)"
        }
        fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
            "ns"
        }
    }
}

/// The multi-tenant configuration and refreshes that `benches/scale.rs` and
/// `decide_loop` measure: `realms` realms x 2 clients.
pub mod tenants {
    use azp_bridge::assertion::{self, AssertionKey, Claims};
    use azp_bridge::config::Config;
    use azp_bridge::endpoint::{Endpoint, Target};
    use azp_bridge::policy::{self, CallerHeader, Inspection, Outcome};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    /// The ES256 and EdDSA keys of the end-to-end tests (test keys, never real ones).
    pub const TEST_KEY: &str = include_str!("../../../tests/fixtures/es256-test-key.pem");
    pub const ED25519_TEST_KEY: &str = include_str!("../../../tests/fixtures/ed25519-test-key.pem");

    /// `realms` realms, each with a `portal-a` and a `portal-b` entry.
    pub fn entries(realms: usize) -> String {
        let clients: Vec<String> = (0..realms)
            .flat_map(|r| {
                ["portal-a", "portal-b"].map(|id| {
                    format!(r#"{{"client_id":"{id}","client_secret":"secret-{r}-{id}","allowed_callers":["spa"],"realms":["r{r}"]}}"#)
                })
            })
            .collect();
        format!(
            r#"{{"upstream_clusters":["keycloak"],"clients":[{}]}}"#,
            clients.join(",")
        )
    }

    /// A refresh by `spa` of a `portal-b` token of `realm`, as the filter sees it.
    pub fn refresh(realm: &str) -> (Inspection, Vec<u8>) {
        let payload = format!(
            r#"{{"exp":1767225600,"iat":1767223800,"iss":"http://127.0.0.1:8080/realms/{realm}","aud":"http://127.0.0.1:8080/realms/{realm}","sub":"5d6f2c1a-8b3e-4f7a-9c2d-1e0f3a4b5c6d","typ":"Refresh","azp":"portal-b","sid":"0b6c1b4e-6a4e-4c6f-9d55-2f1c7e0d3a91","scope":"openid profile email"}}"#
        );
        let token = format!(
            "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(payload)
        );
        let inspection = Inspection {
            target: Target {
                endpoint: Endpoint::Token,
                realm: realm.to_owned(),
            },
            caller: CallerHeader::None,
            has_content_length: true,
        };
        (
            inspection,
            format!("grant_type=refresh_token&client_id=spa&refresh_token={token}").into_bytes(),
        )
    }

    /// The refreshes the scale benchmarks decide: one of realm r0 for the
    /// one-realm configuration, one of realm r2500 for 5,000 realms; both
    /// checked to be rewritten.
    pub fn scale_refreshes(one: &Config, big: &Config) -> [(Inspection, Vec<u8>); 2] {
        let cases = [refresh("r0"), refresh("r2500")];
        for (config, (inspection, body)) in [one, big].into_iter().zip(&cases) {
            assert!(matches!(
                policy::decide(config, inspection, body).outcome,
                Outcome::Rewrite(_)
            ));
        }
        cases
    }

    /// An HS256, an ES256 and an EdDSA key and the claims of one assertion,
    /// each key checked to mint.
    pub fn signing() -> (AssertionKey, AssertionKey, AssertionKey, Claims<'static>) {
        let hs = AssertionKey::Hs256(b"0123456789abcdef0123456789abcdef".to_vec());
        let es = AssertionKey::from_private_key_pem(TEST_KEY).expect("the test key");
        let ed = AssertionKey::from_private_key_pem(ED25519_TEST_KEY).expect("the Ed25519 test key");
        let claims = Claims {
            client_id: "portal-b",
            audience: "http://127.0.0.1:8080/realms/r0",
            now_seconds: 1_767_223_800,
            jti: [5; 16],
        };
        assertion::mint(&hs, None, &claims).expect("HS256 mints");
        assertion::mint(&es, Some("k"), &claims).expect("ES256 mints");
        assertion::mint(&ed, Some("k"), &claims).expect("EdDSA mints");
        (hs, es, ed, claims)
    }
}
