//! The interactive serial console: the terminal in raw mode, keystrokes to
//! the guest's UART, Ctrl-A x to quit. Restored on exit.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vmm::board_types::{Board, Power};

/// Ctrl-A, the escape key.
const ESCAPE: u8 = 0x01;

/// A running console; [`Console::detach`] restores the terminal.
pub struct Console {
    saved: Option<libc::termios>,
    quit: Arc<AtomicBool>,
    target: Arc<Mutex<Arc<Board>>>,
}

/// Puts the terminal (if stdin is one) in raw mode and starts forwarding input.
pub fn attach(board: Arc<Board>) -> Console {
    let saved = raw_mode();
    let quit = Arc::new(AtomicBool::new(false));
    let target = Arc::new(Mutex::new(board));
    let (q, t) = (quit.clone(), target.clone());
    std::thread::Builder::new()
        .name("console-input".into())
        .spawn(move || forward_input(&t, &q))
        .expect("spawn console thread");
    Console {
        saved,
        quit,
        target,
    }
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
        if let Some(t) = self.saved {
            // SAFETY: restoring attributes previously read from the same fd.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        }
        self.quit.load(Ordering::Acquire)
    }
}

fn raw_mode() -> Option<libc::termios> {
    // SAFETY: plain termios calls on fd 0 with properly sized structs.
    unsafe {
        if libc::isatty(0) == 0 {
            return None;
        }
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut t) != 0 {
            return None;
        }
        let saved = t;
        libc::cfmakeraw(&mut t);
        // Keep output processing so the host side of the terminal stays sane.
        t.c_oflag |= libc::OPOST | libc::ONLCR;
        libc::tcsetattr(0, libc::TCSANOW, &t);
        Some(saved)
    }
}

fn forward_input(target: &Mutex<Arc<Board>>, quit: &AtomicBool) {
    let board = || target.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 256];
    let mut escaped = false;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n);
        for &b in &buf[..n] {
            if escaped {
                escaped = false;
                match b {
                    b'x' | b'X' => {
                        quit.store(true, Ordering::Release);
                        board().set_power(Power::Crashed);
                        return;
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
