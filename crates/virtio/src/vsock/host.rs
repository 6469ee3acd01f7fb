//! The host side of a vsock device: one thread that accepts host programs
//! on the device's unix socket and moves bytes between the host streams and
//! the [`Muxer`] with non-blocking I/O, woken by `poll(2)`.

use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::muxer::{Muxer, Token};
use super::router::VsockRouter;
use crate::Notifier;

/// Wakes the host thread (a pipe it polls), e.g. after the guest sent data
/// that could not all be written at once.
pub struct Waker {
    read: OwnedFd,
    write: OwnedFd,
}

impl Waker {
    /// A new pipe.
    pub fn new() -> std::io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two-element array with new descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both descriptors are new and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Waker { read, write })
    }

    /// Wakes the thread (a full pipe means it is awake already).
    pub fn wake(&self) {
        // SAFETY: writes one byte from a valid buffer to our own pipe.
        unsafe { libc::write(self.write.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    }

    fn drain(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reads into a valid buffer of the given size from our own pipe.
        while unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {
        }
    }
}

fn poll_fd(fd: i32, read: bool, write: bool) -> libc::pollfd {
    let mut events = 0;
    if read {
        events |= libc::POLLIN;
    }
    if write {
        events |= libc::POLLOUT;
    }
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Runs the host side until `stop` is set: accepts on `listener`, serves
/// the muxer's streams, and calls `notify` whenever the guest has packets.
pub fn run(
    listener: UnixListener,
    router: Option<Arc<dyn VsockRouter>>,
    muxer: Arc<Mutex<Muxer>>,
    waker: Arc<Waker>,
    notify: Notifier,
    stop: Arc<AtomicBool>,
) {
    let lock = || muxer.lock().unwrap_or_else(|e| e.into_inner());
    while !stop.load(Ordering::Acquire) {
        let (expired, interests) = {
            let mut m = lock();
            (m.expire(), m.interests())
        };
        let mut fds = vec![
            poll_fd(listener.as_raw_fd(), true, false),
            poll_fd(waker.read.as_raw_fd(), true, false),
            poll_fd(router.as_ref().map_or(-1, |r| r.inbox()), true, false),
        ];
        fds.extend(interests.iter().map(|i| poll_fd(i.fd, i.read, i.write)));
        // SAFETY: `fds` is a valid array of pollfds of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1000) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[1].revents != 0 {
            waker.drain();
        }
        let mut m = lock();
        if let (Some(r), true) = (&router, fds[2].revents != 0) {
            while let Some(stream) = r.receive() {
                m.peer_connects(stream);
            }
        }
        if fds[0].revents != 0 {
            loop {
                match listener.accept() {
                    Ok((stream, _)) => m.host_connects(stream),
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        }
        // Handshakes are indexed by position and may be removed: last first.
        let mut ready: Vec<(Token, bool, bool)> = interests
            .iter()
            .zip(&fds[3..])
            .filter(|(_, f)| f.revents != 0)
            .map(|(i, f)| {
                let broken = f.revents & (libc::POLLHUP | libc::POLLERR) != 0;
                (
                    i.token,
                    f.revents & libc::POLLIN != 0 || (broken && i.read),
                    f.revents & libc::POLLOUT != 0 || (broken && i.write),
                )
            })
            .collect();
        ready.sort_by_key(|(t, _, _)| match t {
            Token::Pending(i) => usize::MAX - i,
            Token::Conn(_) => 0,
        });
        for (token, r, w) in ready {
            m.ready(token, r, w);
        }
        let for_guest = m.has_packet();
        drop(m);
        if for_guest && (n > 0 || expired) {
            notify();
        }
    }
}
