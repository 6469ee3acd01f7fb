//! A running `pocketvisor` process whose console output is collected as it
//! comes (through pipes or a pseudo-terminal), so a test can wait for guest
//! markers, signal the process and read how it ended. Killed by PID if the
//! test ends first.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A started VMM.
pub struct VmmProcess {
    child: Child,
    output: Arc<Mutex<String>>,
    /// The pseudo-terminal's slave (the VMM's terminal), when run on one.
    pub pty: Option<OwnedFd>,
    /// That terminal's settings before the VMM started.
    pub pty_before: Option<libc::termios>,
    /// Tells the pty reader to close the master (a hang-up).
    hang_up: Arc<AtomicBool>,
}

/// Appends everything `from` yields to `into`, on a thread of its own
/// (joined, the text is complete).
pub fn collect(
    mut from: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                return;
            }
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
}

/// Opens a pseudo-terminal: (master, slave), both close-on-exec so that
/// VMMs started in parallel by other tests do not keep them open.
pub fn open_pty() -> (OwnedFd, OwnedFd) {
    let check = |r: i32, what: &str| assert!(r >= 0, "{what}: {}", std::io::Error::last_os_error());
    // SAFETY: plain calls on the descriptor they return; ptsname_r gets a
    // buffer of its stated length.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        check(m, "posix_openpt");
        let master = OwnedFd::from_raw_fd(m);
        check(libc::grantpt(m), "grantpt");
        check(libc::unlockpt(m), "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        check(
            libc::ptsname_r(m, name.as_mut_ptr(), name.len()),
            "ptsname_r",
        );
        let s = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        check(s, "open pty slave");
        (master, OwnedFd::from_raw_fd(s))
    }
}

/// The terminal attributes of `fd`.
pub fn termios(fd: &OwnedFd) -> libc::termios {
    // SAFETY: termios is plain data; tcgetattr fills it.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor and struct.
    assert_eq!(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) }, 0);
    t
}

/// Reads the pty master until the child is gone or a hang-up is asked for,
/// then closes it.
fn collect_pty(master: OwnedFd, into: Arc<Mutex<String>>, hang_up: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut file = std::fs::File::from(master);
        let mut buf = [0u8; 4096];
        while !hang_up.load(Ordering::Acquire) {
            let mut pfd = libc::pollfd {
                fd: file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
                continue;
            }
            match file.read(&mut buf) {
                Ok(n) if n > 0 => into
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => return,
            }
        }
    });
}

impl VmmProcess {
    /// Starts `pocketvisor ARGS` with stdin from /dev/null and its output piped.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pocketvisor"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pocketvisor");
        let output = Arc::new(Mutex::new(String::new()));
        let _ = collect(child.stdout.take().unwrap(), output.clone());
        let _ = collect(child.stderr.take().unwrap(), output.clone());
        VmmProcess {
            child,
            output,
            pty: None,
            pty_before: None,
            hang_up: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts `pocketvisor ARGS` with a pseudo-terminal as its console.
    pub fn start_on_pty(args: &[&str]) -> Self {
        let (master, slave) = open_pty();
        let before = termios(&slave);
        let stdio = || Stdio::from(slave.try_clone().unwrap());
        let child = Command::new(env!("CARGO_BIN_EXE_pocketvisor"))
            .args(args)
            .stdin(stdio())
            .stdout(stdio())
            .stderr(stdio())
            .spawn()
            .expect("start pocketvisor");
        let output = Arc::new(Mutex::new(String::new()));
        let hang_up = Arc::new(AtomicBool::new(false));
        collect_pty(master, output.clone(), hang_up.clone());
        VmmProcess {
            child,
            output,
            pty: Some(slave),
            pty_before: Some(before),
            hang_up,
        }
    }

    /// Closes the terminal's master side, as a terminal window closing does.
    pub fn hang_up(&mut self) {
        self.hang_up.store(true, Ordering::Release);
        self.pty = None;
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output contains `needle`; panics with the output on timeout.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.output().contains(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "pocketvisor ended ({status}) before '{needle}':\n{}",
                    self.output()
                );
            }
            assert!(
                start.elapsed() < limit,
                "no '{needle}' within {limit:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends signal `sig`.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill on our own child's PID.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the exit code (None if killed by a signal); kills the
    /// process and panics after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Let the readers take the last bytes.
                std::thread::sleep(Duration::from_millis(100));
                return status.code();
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "pocketvisor did not exit within {limit:?}:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A field of /proc/PID/status (e.g. "Threads", "VmRSS"), as a number.
    pub fn status_field(&self, name: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/PID/status"))
    }
}

impl Drop for VmmProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
