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
