//! Each CPU's power state as PSCI sees it — CPU_ON, CPU_OFF,
//! AFFINITY_INFO — and the wait of a powered-off CPU's thread for CPU_ON.
//!
//! The board owns it (it is guest-visible and saved with the board); the
//! VMM's vCPU loops act on it: a loop whose CPU is off waits here, one
//! whose CPU is pending resets its vCPU at the entry point and marks it on.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::psci::status;

/// The power state of one CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CpuPower {
    /// Off: its thread waits for a CPU_ON.
    Off,
    /// A CPU_ON came: the CPU starts at `entry` with `context` in x0.
    OnPending {
        /// The entry point.
        entry: u64,
        /// The value for x0.
        context: u64,
    },
    /// Running (or waiting for an interrupt).
    On,
}

/// Every CPU's power state, with the wait for CPU_ON.
pub struct CpuPowers {
    states: Mutex<Vec<CpuPower>>,
    changed: Condvar,
}

impl CpuPowers {
    /// `n` CPUs as at reset: the first on, the others off.
    pub(crate) fn new(n: usize) -> Self {
        let states = (0..n)
            .map(|i| if i == 0 { CpuPower::On } else { CpuPower::Off })
            .collect();
        CpuPowers {
            states: Mutex::new(states),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<CpuPower>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// CPU `cpu`'s power state (off for a CPU that does not exist).
    pub fn get(&self, cpu: usize) -> CpuPower {
        self.lock().get(cpu).copied().unwrap_or(CpuPower::Off)
    }

    /// Every CPU's state, CPU 0 first (for saving).
    pub fn all(&self) -> Vec<CpuPower> {
        self.lock().clone()
    }

    /// Loads saved states (as many as CPUs, checked by the caller) and wakes
    /// the waiting threads.
    pub(crate) fn set_all(&self, states: &[CpuPower]) {
        self.lock().copy_from_slice(states);
        self.changed.notify_all();
    }

    /// PSCI CPU_ON of `cpu`: the PSCI status to return to the caller.
    pub fn cpu_on(&self, cpu: usize, entry: u64, context: u64) -> i64 {
        let mut states = self.lock();
        let Some(state) = states.get_mut(cpu) else {
            return status::INVALID_PARAMETERS;
        };
        match *state {
            // A CPU whose CPU_ON is under way counts as on, as KVM answers
            // (callers racing to start one CPU get one success, the rest
            // ALREADY_ON, which kvm-unit-tests' psci test checks).
            CpuPower::On | CpuPower::OnPending { .. } => status::ALREADY_ON,
            CpuPower::Off => {
                *state = CpuPower::OnPending { entry, context };
                self.changed.notify_all();
                status::SUCCESS
            }
        }
    }

    /// Marks CPU `cpu` as running (its thread reset it at its entry point).
    pub fn set_on(&self, cpu: usize) {
        if let Some(s) = self.lock().get_mut(cpu) {
            *s = CpuPower::On;
        }
    }

    /// PSCI CPU_OFF by `cpu`. Returns whether every CPU is now off (the
    /// machine can do nothing more).
    pub fn cpu_off(&self, cpu: usize) -> bool {
        let mut states = self.lock();
        if let Some(s) = states.get_mut(cpu) {
            *s = CpuPower::Off;
        }
        self.changed.notify_all();
        states.iter().all(|s| *s == CpuPower::Off)
    }

    /// Waits while CPU `cpu` is off; returns its state once it is not, or
    /// `None` once `machine_on` says the machine stopped.
    pub fn wait_until_on(&self, cpu: usize, machine_on: impl Fn() -> bool) -> Option<CpuPower> {
        let mut states = self.lock();
        loop {
            if !machine_on() {
                return None;
            }
            match states.get(cpu) {
                None => return None,
                Some(CpuPower::Off) => {}
                Some(s) => return Some(*s),
            }
            states = self
                .changed
                .wait_timeout(states, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Wakes every waiting thread (the machine's power changed).
    pub(crate) fn wake_all(&self) {
        let _states = self.lock();
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_on_off_and_the_statuses_psci_gives() {
        let p = CpuPowers::new(2);
        assert_eq!(p.get(0), CpuPower::On);
        assert_eq!(p.get(1), CpuPower::Off);
        assert_eq!(p.cpu_on(0, 0, 0), status::ALREADY_ON);
        assert_eq!(p.cpu_on(1, 0x4008_0000, 7), status::SUCCESS);
        assert_eq!(
            p.cpu_on(1, 0, 0),
            status::ALREADY_ON,
            "pending counts as on"
        );
        assert_eq!(p.cpu_on(2, 0, 0), status::INVALID_PARAMETERS);
        assert_eq!(
            p.wait_until_on(1, || true),
            Some(CpuPower::OnPending {
                entry: 0x4008_0000,
                context: 7
            })
        );
        p.set_on(1);
        assert!(!p.cpu_off(1));
        assert_eq!(p.get(1), CpuPower::Off);
        assert!(p.cpu_off(0), "the last CPU went off");
    }

    #[test]
    fn a_waiting_cpu_is_woken_by_cpu_on_and_by_the_machine_stopping() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let p = Arc::new(CpuPowers::new(2));
        let waiter = {
            let p = p.clone();
            std::thread::spawn(move || p.wait_until_on(1, || true))
        };
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(p.cpu_on(1, 0x1000, 0), status::SUCCESS);
        assert!(matches!(
            waiter.join().unwrap(),
            Some(CpuPower::OnPending { entry: 0x1000, .. })
        ));
        let on = Arc::new(AtomicBool::new(true));
        let waiter = {
            let (p, on) = (p.clone(), on.clone());
            std::thread::spawn(move || p.wait_until_on(0, || on.load(Ordering::SeqCst)))
        };
        p.cpu_off(0);
        on.store(false, Ordering::SeqCst);
        p.wake_all();
        assert_eq!(waiter.join().unwrap(), None);
    }
}
