//! Stopping the VM from outside, in order: SIGTERM, SIGINT, SIGHUP or a
//! closed console ask the vCPUs to stop; `main` then lets the VM drop
//! (block devices finish their I/O and `fdatasync`), restores the terminal,
//! removes its sockets and exits with [`crate::exit::STOPPED`]. A second
//! SIGINT or SIGTERM, or an orderly stop that takes longer than [`GRACE`],
//! forces the exit: the terminal is restored and the sockets removed all the
//! same.

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
        // A signal the user's shell told us to ignore (`nohup` ignores
        // SIGHUP, a background job may ignore SIGINT) stays ignored.
        let wanted: Vec<i32> = [SIGTERM, SIGINT, SIGHUP]
            .into_iter()
            .filter(|&s| s == SIGTERM || !ignored(s))
            .collect();
        let mut signals = Signals::new(&wanted)?;
        let h = handle.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if h.cause.load(Ordering::Acquire) != 0 {
                        // A closing terminal sends SIGHUP on top of the end
                        // of input that already stops us: not a reason to
                        // hurry. A second SIGINT or SIGTERM is.
                        if sig != SIGHUP {
                            force_exit(&format!("second signal ({})", name(sig)));
                        }
                        continue;
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

/// Whether `sig` is ignored (SIG_IGN) in this process now.
fn ignored(sig: i32) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
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
    // The message may not get out (stderr can be a full pipe, which may be
    // what stuck the VM): write it from a thread and leave regardless.
    let line = format!("\r\npocketvisor: forced exit: {why}");
    let _ = std::thread::Builder::new().spawn(move || crate::say(&line));
    std::thread::sleep(std::time::Duration::from_millis(100));
    // SAFETY: _exit ends the process without running destructors, which
    // might wait for the stuck threads this exit is about.
    unsafe { libc::_exit(crate::exit::STOPPED as i32) }
}
