//! A CPU quota for a VM's vCPUs: a background VM on a phone may use at
//! most a share of a host core, so a busy one cannot starve the VM in the
//! foreground. Each vCPU thread measures its own CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) and, once it has used its share of the
//! current period, sleeps until the period ends. Time spent waiting for
//! interrupts costs nothing and counts for nothing.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The accounting period.
pub const PERIOD: Duration = Duration::from_millis(100);
/// Longest single sleep while throttled (the loop re-checks the machine
/// and the quota between them).
const MAX_NAP: Duration = Duration::from_millis(10);

/// A VM's CPU quota, shared by its vCPU loops and its control handle
/// (cheap to clone).
#[derive(Clone, Debug, Default)]
pub struct CpuQuota {
    /// Percent of one host core per vCPU; 0 = unlimited.
    percent: Arc<AtomicU32>,
}

impl CpuQuota {
    /// Limits each vCPU to `percent` of a host core (1 to 100), or lifts
    /// the limit (`None`).
    pub fn set(&self, percent: Option<u32>) {
        let p = percent.map_or(0, |p| p.clamp(1, 100));
        self.percent
            .store(if p >= 100 { 0 } else { p }, Ordering::Relaxed);
    }

    /// The limit in percent, if any.
    pub fn get(&self) -> Option<u32> {
        match self.percent.load(Ordering::Relaxed) {
            0 => None,
            p => Some(p),
        }
    }
}

/// One vCPU thread's accounting.
pub(crate) struct Throttle {
    quota: CpuQuota,
    period_start: Instant,
    cpu_at_start: Duration,
}

/// CPU time used by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Throttle {
    /// Accounting for the calling thread under `quota`.
    pub(crate) fn new(quota: CpuQuota) -> Self {
        Throttle {
            quota,
            period_start: Instant::now(),
            cpu_at_start: thread_cpu_time(),
        }
    }

    /// Called between guest slices: sleeps while this thread is over its
    /// share of the period. `keep_waiting` is asked between naps (false
    /// when the machine stops).
    pub(crate) fn charge(&mut self, keep_waiting: impl Fn() -> bool) {
        let Some(percent) = self.quota.get() else {
            return;
        };
        let now = Instant::now();
        if now.duration_since(self.period_start) >= PERIOD {
            self.period_start = now;
            self.cpu_at_start = thread_cpu_time();
            return;
        }
        let budget = PERIOD * percent / 100;
        if thread_cpu_time().saturating_sub(self.cpu_at_start) < budget {
            return;
        }
        let end = self.period_start + PERIOD;
        while keep_waiting() && self.quota.get().is_some() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(MAX_NAP));
        }
        self.period_start = Instant::now();
        self.cpu_at_start = thread_cpu_time();
    }
}
