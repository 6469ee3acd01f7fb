//! The control socket (`--api PATH`): a unix stream socket taking one
//! command per line and answering one line each.
//!
//! * `balloon SIZE` — set the balloon target (e.g. `balloon 128M`) → `ok`
//! * `balloon` — `target=… actual=… inflated=… reported=…` in bytes
//! * `stats` — the guest's memory statistics as `tag=value` pairs
//! * `pause` / `resume` — stop the vCPUs and device I/O at a consistent
//!   point, and go on (`ok`); `state` → `running` or `paused`
//!
//! Bounded against abuse: one thread serves every client with `poll(2)`;
//! at most [`MAX_CLIENTS`] at once (more are told so and closed); a line
//! longer than [`MAX_LINE`] bytes gets an error and the client is closed;
//! a client that leaves a line unfinished for [`LINE_TIMEOUT`], or sends
//! nothing for [`IDLE_TIMEOUT`], is closed; a client that does not read its
//! answers is closed rather than waited for. The socket file is mode 0600
//! and never replaces another file or a live socket.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hostio::socket::{SocketError, SocketFile};
use vmm::parse_size;

/// Longest command line, newline included.
pub const MAX_LINE: usize = 4096;
/// Most clients connected at once.
pub const MAX_CLIENTS: usize = 8;
/// How long a client may take to finish a line it started.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may stay connected without sending anything.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// What the commands act on (replaced when the VM reboots).
#[derive(Clone)]
pub struct Target {
    /// The VM's control handle.
    pub control: vmm::VmControl,
}

type Shared = Arc<Mutex<Option<Target>>>;

/// A listening control socket, served until dropped.
pub struct Api {
    target: Shared,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _file: SocketFile,
}

impl Api {
    /// Listens on `path`.
    pub fn bind(path: &Path) -> Result<Self, SocketError> {
        let (listener, file) = hostio::socket::bind_listener(path)?;
        let io = |e| SocketError::Io(path.to_path_buf(), e);
        listener.set_nonblocking(true).map_err(io)?;
        let target: Shared = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (target.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("api".into())
            .spawn(move || serve(listener, &t, &s))
            .map_err(io)?;
        Ok(Api {
            target,
            stop,
            thread: Some(thread),
            _file: file,
        })
    }

    /// Directs commands at this VM.
    pub fn serve(&self, target: Target) {
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = Some(target);
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One connected client.
struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
    last_input: Instant,
    line_started: Option<Instant>,
}

/// How often the loop wakes to enforce timeouts and notice a stop.
const TICK: Duration = Duration::from_millis(200);

fn serve(listener: UnixListener, target: &Shared, stop: &AtomicBool) {
    let mut clients: Vec<Client> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let mut fds: Vec<libc::pollfd> = std::iter::once(listener.as_raw_fd())
            .chain(clients.iter().map(|c| c.stream.as_raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of pollfd for its length.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                TICK.as_millis() as i32,
            )
        };
        if n < 0 {
            continue; // EINTR
        }
        let now = Instant::now();
        let mut keep = vec![true; clients.len()];
        for (i, c) in clients.iter_mut().enumerate() {
            if fds[i + 1].revents != 0 {
                keep[i] = serve_client(c, target, now);
            } else if now.duration_since(c.last_input) > IDLE_TIMEOUT
                || c.line_started
                    .is_some_and(|t| now.duration_since(t) > LINE_TIMEOUT)
            {
                let _ = c.stream.write_all(b"error: timed out\n");
                keep[i] = false;
            }
        }
        let mut k = keep.into_iter();
        clients.retain(|_| k.next().unwrap_or(false));
        if fds[0].revents != 0 {
            accept_all(&listener, &mut clients, now);
        }
    }
}

fn accept_all(listener: &UnixListener, clients: &mut Vec<Client>, now: Instant) {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                // Never wait on a client, not even to turn it away.
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                if clients.len() >= MAX_CLIENTS {
                    let _ = writeln!(
                        stream,
                        "error: too many API clients (at most {MAX_CLIENTS})"
                    );
                    continue;
                }
                clients.push(Client {
                    stream,
                    buf: Vec::new(),
                    last_input: now,
                    line_started: None,
                });
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return, // WouldBlock: all taken
        }
    }
}

/// Reads what the client sent and answers its complete lines; returns
/// whether to keep the client.
fn serve_client(c: &mut Client, target: &Shared, now: Instant) -> bool {
    let mut chunk = [0u8; MAX_LINE];
    let n = match c.stream.read(&mut chunk) {
        Ok(0) => return false,
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
            return true
        }
        Err(_) => return false,
    };
    c.last_input = now;
    c.buf.extend_from_slice(&chunk[..n]);
    while let Some(end) = c.buf.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = c.buf.drain(..=end).collect();
        let text = String::from_utf8_lossy(&line[..end]);
        let reply = command(text.trim(), target);
        // Answers are short; a client that does not read them is dropped.
        if writeln!(c.stream, "{reply}").is_err() {
            return false;
        }
    }
    if c.buf.len() >= MAX_LINE {
        let _ = writeln!(c.stream, "error: request longer than {MAX_LINE} bytes");
        return false;
    }
    c.line_started = if c.buf.is_empty() {
        None
    } else {
        c.line_started.or(Some(now))
    };
    true
}

fn command(line: &str, target: &Shared) -> String {
    let Some(t) = target.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
        return "error: no VM running".into();
    };
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("balloon"), Some(size), None) => {
            match parse_size(size).and_then(|bytes| t.control.set_balloon_target(bytes)) {
                Ok(()) => "ok".into(),
                Err(e) => format!("error: {e}"),
            }
        }
        (Some("balloon"), None, None) => match t.control.balloon() {
            Ok(b) => format!(
                "target={} actual={} inflated={} reported={}",
                b.target, b.actual, b.inflated, b.reported
            ),
            Err(e) => format!("error: {e}"),
        },
        (Some("pause"), None, None) => {
            t.control.pause();
            "ok".into()
        }
        (Some("resume"), None, None) => {
            t.control.resume();
            "ok".into()
        }
        (Some("state"), None, None) => if t.control.is_paused() {
            "paused"
        } else {
            "running"
        }
        .into(),
        (Some("stats"), None, None) => match t.control.balloon() {
            Ok(b) => b
                .stats
                .iter()
                .map(|(tag, v)| format!("{tag}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("error: {e}"),
        },
        _ => {
            let shown: String = line.chars().take(64).collect();
            format!(
                "error: unknown command '{shown}' (balloon [SIZE], stats, pause, resume, state)"
            )
        }
    }
}
