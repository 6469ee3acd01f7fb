//! Kicking a vCPU out of `KVM_RUN` from another thread.
//!
//! The kicker sets the handle's flag and sends the vCPU's thread a
//! real-time signal. Its handler, running on that thread, sets the
//! `immediate_exit` byte of the thread's current `kvm_run`, so a kick that
//! lands just before `KVM_RUN` makes it return at once, and one that lands
//! during it ends it with `EINTR`. The vCPU clears the byte and then looks
//! at the flag before every entry, so no kick is lost between the two.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

thread_local! {
    /// The `immediate_exit` byte of the vCPU this thread is running, if any.
    static IMMEDIATE_EXIT: Cell<*mut u8> = const { Cell::new(std::ptr::null_mut()) };
}

extern "C" fn on_kick(_signal: libc::c_int) {
    // Async-signal-safe: a const-initialised thread-local without a destructor.
    let _ = IMMEDIATE_EXIT.try_with(|p| {
        let p = p.get();
        if !p.is_null() {
            // SAFETY: set by `Kicker::enter` for this thread's running vCPU,
            // whose kvm_run mapping outlives the time it is set.
            unsafe { p.write_volatile(1) };
        }
    });
}

/// The signal kicks use.
fn kick_signal() -> libc::c_int {
    libc::SIGRTMIN() + 1
}

fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a plain handler for a real-time signal nothing else uses;
        // SA_RESTART keeps other system calls of the thread unaffected
        // (KVM_RUN itself always returns EINTR).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_kick as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(kick_signal(), &action, std::ptr::null_mut());
        }
    });
}

/// One vCPU's kick state, shared with the threads that kick it.
pub(crate) struct Kicker {
    kicked: AtomicBool,
    /// The thread in `run`, while it is there (under the lock, so a kicker
    /// never signals a thread that has left — or ended).
    thread: Mutex<Option<libc::pthread_t>>,
}

impl Kicker {
    pub(crate) fn new() -> Self {
        install_handler();
        Kicker {
            kicked: AtomicBool::new(false),
            thread: Mutex::new(None),
        }
    }

    /// The calling thread starts running the vCPU whose `immediate_exit`
    /// byte is `exit` (valid until [`Kicker::leave`]).
    pub(crate) fn enter(&self, exit: *mut u8) {
        IMMEDIATE_EXIT.with(|p| p.set(exit));
        // SAFETY: pthread_self has no preconditions.
        *self.thread.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(unsafe { libc::pthread_self() });
    }

    /// Whether a kick came since the last call (clears it).
    pub(crate) fn take(&self) -> bool {
        self.kicked.swap(false, Ordering::SeqCst)
    }

    /// The calling thread stops running the vCPU.
    pub(crate) fn leave(&self) {
        *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = None;
        IMMEDIATE_EXIT.with(|p| p.set(std::ptr::null_mut()));
    }

    /// Makes the vCPU leave guest code soon.
    pub(crate) fn kick(&self) {
        self.kicked.store(true, Ordering::SeqCst);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = *thread {
            // SAFETY: the thread is alive: it clears the field under this
            // lock before it leaves `run`.
            unsafe { libc::pthread_kill(t, kick_signal()) };
        }
    }
}
