//! The interactive serial console: the terminal in raw mode, keystrokes to
//! the guest's UART, Ctrl-A x to quit. Restored on every way out: detach,
//! a forced exit and a VMM panic all call [`restore_terminal`]. A terminal
//! that goes away (end of input or an I/O error on a tty) stops the VM.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vmm::board_types::{Board, Power};

use crate::stop::StopHandle;

/// Ctrl-A, the escape key.
const ESCAPE: u8 = 0x01;

/// The terminal's settings before raw mode, for whoever restores them.
static SAVED: Mutex<Option<libc::termios>> = Mutex::new(None);

/// Puts the terminal back as it was before [`attach`] (idempotent).
pub fn restore_terminal() {
    let saved = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(t) = saved {
        // SAFETY: restoring attributes previously read from the same fd.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
    }
}

/// A running console; [`Console::detach`] restores the terminal.
pub struct Console {
    quit: Arc<AtomicBool>,
    target: Arc<Mutex<Arc<Board>>>,
}

/// Puts the terminal (if stdin is one) in raw mode and starts forwarding input.
pub fn attach(board: Arc<Board>, stop: StopHandle) -> Console {
    let tty = raw_mode();
    let quit = Arc::new(AtomicBool::new(false));
    let target = Arc::new(Mutex::new(board));
    let (q, t) = (quit.clone(), target.clone());
    std::thread::Builder::new()
        .name("console-input".into())
        .spawn(move || {
            // Input ended: on a terminal that means it went away.
            if forward_input(&t, &q) && tty {
                stop.console_closed();
            }
        })
        .expect("spawn console thread");
    Console { quit, target }
}

impl Console {
    /// Sends further input to `board` (the VM was rebooted).
    pub fn retarget(&self, board: Arc<Board>) {
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = board;
    }

    /// Whether the user pressed Ctrl-A x.
    pub fn quit_requested(&self) -> bool {
        self.quit.load(Ordering::Acquire)
    }

    /// Restores the terminal; returns whether the user quit with Ctrl-A x.
    pub fn detach(self) -> bool {
        restore_terminal();
        self.quit.load(Ordering::Acquire)
    }
}

/// Raw mode on stdin if it is a terminal; returns whether it is one.
pub(crate) fn raw_mode() -> bool {
    // SAFETY: plain termios calls on fd 0 with properly sized structs.
    unsafe {
        if libc::isatty(0) == 0 {
            return false;
        }
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut t) != 0 {
            return false;
        }
        *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
        libc::cfmakeraw(&mut t);
        // Keep output processing so the host side of the terminal stays sane.
        t.c_oflag |= libc::OPOST | libc::ONLCR;
        libc::tcsetattr(0, libc::TCSANOW, &t);
        true
    }
}

/// Forwards typed input until the terminal goes away (true), or the user
/// quits or input cannot be read (false).
fn forward_input(target: &Mutex<Arc<Board>>, quit: &AtomicBool) -> bool {
    let board = || target.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 256];
    let mut escaped = false;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // Another program may have left the terminal non-blocking.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut fd = libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut fd, 1, 100) };
                continue;
            }
            // EIO: the terminal hung up.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => return true,
            // Anything else: stop forwarding input, leave the VM running.
            Err(_) => return false,
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n);
        for &b in &buf[..n] {
            if escaped {
                escaped = false;
                match b {
                    b'x' | b'X' => {
                        quit.store(true, Ordering::Release);
                        board().set_power(Power::Stopped);
                        return false;
                    }
                    ESCAPE => out.push(ESCAPE),
                    _ => {}
                }
            } else if b == ESCAPE {
                escaped = true;
            } else {
                out.push(b);
            }
        }
        let mut rest = &out[..];
        while !rest.is_empty() {
            let board = board();
            if board.power() != Power::On {
                // Between a reset and the next boot: try again shortly.
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let taken = board.console_input(rest);
            rest = &rest[taken..];
            if !rest.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}
