//! Stopping the VM from outside, in order: SIGTERM, SIGINT, SIGHUP or a
//! closed console ask the vCPUs to stop; `main` then lets the VM drop
//! (block devices finish their I/O and `fdatasync`), restores the terminal,
//! removes its sockets and exits with [`crate::exit::STOPPED`]. A second
//! signal, or an orderly stop that takes longer than [`GRACE`], forces the
//! exit: the terminal is restored and the sockets removed all the same.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use vmm::board_types::{Board, Power};

/// How long an orderly stop may take before the exit is forced.
pub const GRACE: Duration = Duration::from_secs(10);

/// `cause` value for a console that went away (not a signal number).
const CONSOLE_CLOSED: i32 = -1;

/// Asks the running VM to stop; shared by the signal thread and the console.
#[derive(Clone)]
pub struct StopHandle {
    board: Arc<Mutex<Option<Arc<Board>>>>,
    /// 0 while running, else the signal number or [`CONSOLE_CLOSED`].
    cause: Arc<AtomicI32>,
}

impl StopHandle {
    /// Installs the signal handlers (a thread of their own waits for them).
    pub fn install() -> std::io::Result<Self> {
        let handle = StopHandle {
            board: Arc::new(Mutex::new(None)),
            cause: Arc::new(AtomicI32::new(0)),
        };
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        let h = handle.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if h.cause.load(Ordering::Acquire) != 0 {
                        force_exit(&format!("second signal ({})", name(sig)));
                    }
                    h.request(sig);
                }
            })?;
        Ok(handle)
    }

    /// Stops the VM (now, or as soon as it is built) because of `cause`.
    fn request(&self, cause: i32) {
        if self
            .cause
            .compare_exchange(0, cause, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        if let Some(b) = self
            .board
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            b.set_power(Power::Stopped);
        }
        std::thread::spawn(|| {
            std::thread::sleep(GRACE);
            force_exit("the orderly stop took too long");
        });
    }

    /// The console went away (a terminal that hung up).
    pub fn console_closed(&self) {
        self.request(CONSOLE_CLOSED);
    }

    /// Directs stops at `board` (a new VM after a reboot); stops it at
    /// once if a stop was already asked for.
    pub fn watch(&self, board: Arc<Board>) {
        let mut slot = self.board.lock().unwrap_or_else(|e| e.into_inner());
        if self.requested() {
            board.set_power(Power::Stopped);
        }
        *slot = Some(board);
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.cause.load(Ordering::Acquire) != 0
    }

    /// Why the VM was stopped, for the user.
    pub fn reason(&self) -> String {
        match self.cause.load(Ordering::Acquire) {
            CONSOLE_CLOSED => "the console was closed".into(),
            0 => "stopped".into(),
            sig => format!("stopped by {}", name(sig)),
        }
    }
}

fn name(sig: i32) -> &'static str {
    match sig {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Leaves now, tidying what must not be left behind.
fn force_exit(why: &str) -> ! {
    crate::console::restore_terminal();
    hostio::socket::remove_all_now();
    crate::say(&format!("\r\npocketvisor: forced exit: {why}"));
    // SAFETY: _exit ends the process without running destructors, which
    // might wait for the stuck threads this exit is about.
    unsafe { libc::_exit(crate::exit::STOPPED as i32) }
}
