//! Virtio queue kicks without vCPU exits, where the backend can do it
//! (KVM's ioeventfd): each queue's QueueNotify write with its index becomes
//! an event, and one thread of the VM passes the events on to the devices'
//! I/O threads.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use hypervisor::IoEvents;
use virtio::{MmioTransport, QueueKicks};

/// The thread passing kicks on; stopped and joined when dropped.
pub(crate) struct KickThread {
    stop: OwnedFd,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The QueueNotify register of a virtio-mmio transport at `base`.
fn queue_notify(base: u64) -> u64 {
    base + MmioTransport::QUEUE_NOTIFY
}

fn eventfd() -> Result<OwnedFd, String> {
    // SAFETY: eventfd with flags only; the descriptor is owned at once.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!(
            "cannot make an eventfd: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl KickThread {
    /// Asks `io` for an event per queue of each transport (at its base
    /// address) that has an I/O thread, and starts the thread that passes
    /// them on. `None` if no transport takes kicks this way.
    pub(crate) fn start(
        io: &dyn IoEvents,
        transports: &[(u64, Arc<Mutex<MmioTransport>>)],
    ) -> Result<Option<KickThread>, String> {
        let mut kicks: Vec<QueueKicks> = Vec::new();
        for (base, transport) in transports {
            let t = transport.lock().unwrap_or_else(|e| e.into_inner());
            // Without an I/O thread nothing would read the events, and the
            // guest's kicks must not vanish into them: it keeps MMIO exits.
            if !t.has_io_thread() {
                continue;
            }
            let events = (0..t.num_queues())
                .map(|q| Ok((q, io.watch_write(queue_notify(*base), q as u32)?)))
                .collect::<Result<Vec<_>, String>>()?;
            kicks.extend(t.watch_kicks(events));
        }
        if kicks.is_empty() {
            return Ok(None);
        }
        let stop = eventfd()?;
        let stop_fd = stop.as_raw_fd();
        let thread = std::thread::Builder::new()
            .name("virtio-kicks".into())
            .spawn(move || pass_on(&kicks, stop_fd))
            .map_err(|e| format!("cannot start the virtio kick thread: {e}"))?;
        Ok(Some(KickThread {
            stop,
            thread: Some(thread),
        }))
    }
}

/// Waits for kicks and hands each to its device until `stop` is signalled.
fn pass_on(kicks: &[QueueKicks], stop: i32) {
    let mut targets = vec![None];
    let mut fds = vec![libc::pollfd {
        fd: stop,
        events: libc::POLLIN,
        revents: 0,
    }];
    for k in kicks {
        for (queue, fd) in k.events() {
            targets.push(Some((k, queue)));
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
    }
    loop {
        // SAFETY: poll over descriptors that outlive this thread (the
        // transports and the stop event are dropped after it is joined).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[0].revents != 0 {
            return;
        }
        for (p, target) in fds.iter_mut().zip(&targets).skip(1) {
            if p.revents & libc::POLLIN != 0 {
                if let Some((k, queue)) = target {
                    k.forward(*queue, p.fd);
                }
            }
            p.revents = 0;
        }
    }
}

impl Drop for KickThread {
    fn drop(&mut self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: an 8-byte write to our eventfd.
        let _ = unsafe { libc::write(self.stop.as_raw_fd(), one.as_ptr().cast(), 8) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
