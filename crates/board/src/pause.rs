//! Pausing a machine: vCPUs park at an instruction boundary and devices
//! stop touching guest memory, so that what a pause shows (RAM, device
//! state) stays still until resume.
//!
//! The pieces: [`PauseGate`] is the flag vCPU loops park on; the board
//! defers `poll_devices` (the path by which host-side events — network
//! frames, vsock data, console port input, balloon targets — reach guest
//! memory) while paused and runs it once on resume; a device with I/O in
//! flight on a thread of its own says so with `MmioDevice::busy`, and the
//! pause waits for it.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// The pause flag and the count of vCPUs parked on it.
#[derive(Default)]
pub struct PauseGate {
    state: Mutex<GateState>,
    cv: Condvar,
}

#[derive(Default)]
struct GateState {
    paused: bool,
    parked: usize,
}

impl PauseGate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a pause is asked for.
    pub fn paused(&self) -> bool {
        self.lock().paused
    }

    /// Sets or clears the pause; wakes parked vCPUs on clear.
    pub(crate) fn set(&self, paused: bool) {
        self.lock().paused = paused;
        self.cv.notify_all();
    }

    /// Called by a vCPU loop between exits: parks while paused (or until
    /// `still_on` says the machine stopped).
    pub fn park_while_paused(&self, still_on: impl Fn() -> bool) {
        let mut s = self.lock();
        if !s.paused {
            return;
        }
        s.parked += 1;
        self.cv.notify_all();
        while s.paused && still_on() {
            s = self
                .cv
                .wait_timeout(s, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        s.parked -= 1;
    }

    /// Waits until as many vCPUs are parked as `running` says run (or
    /// `give_up` says to stop waiting).
    pub(crate) fn wait_parked(&self, running: impl Fn() -> usize, give_up: impl Fn() -> bool) {
        let mut s = self.lock();
        while s.parked < running() && !give_up() {
            s = self
                .cv
                .wait_timeout(s, Duration::from_millis(5))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
