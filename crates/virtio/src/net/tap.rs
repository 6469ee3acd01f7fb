//! A host TAP device as the network backend: the guest's frames appear on
//! a host interface (`ip link` shows it), where the host can route, bridge
//! or NAT them. Opening one needs /dev/net/tun and either CAP_NET_ADMIN or
//! a persistent TAP device made for the user (`ip tuntap add NAME mode tap
//! user USER`).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{Inbox, NetBackend, MAX_FRAME};
use crate::Notifier;

const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
/// _IOW('T', 202, int)
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// `struct ifreq` as TUNSETIFF reads it: the name and the flags.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// An open TAP device.
pub struct Tap {
    file: File,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl Tap {
    /// Opens (or creates) TAP interface `name`; its frames for the guest go
    /// to `inbox` from a thread of its own, which calls `notify` after each.
    pub fn open(name: &str, inbox: Inbox, notify: Notifier) -> Result<Self, String> {
        if name.is_empty()
            || name.len() >= libc::IFNAMSIZ
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(format!(
                "'{name}' is not an interface name (1-15 letters, digits, '.', '_', '-')"
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(|e| format!("cannot open /dev/net/tun for tap '{name}': {e}"))?;
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `IfReq` lays out.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            let hint = if e.kind() == ErrorKind::PermissionDenied {
                format!(
                    " (needs CAP_NET_ADMIN, or first: ip tuntap add {name} mode tap user $USER)"
                )
            } else {
                String::new()
            };
            return Err(format!("cannot attach to tap '{name}': {e}{hint}"));
        }
        let reader = file.try_clone().map_err(|e| format!("tap '{name}': {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_reader = stop.clone();
        let reader = std::thread::Builder::new()
            .name("net-tap-rx".into())
            .spawn(move || receive(reader, inbox, notify, &stop_reader))
            .map_err(|e| format!("tap '{name}': {e}"))?;
        Ok(Tap {
            file,
            stop,
            reader: Some(reader),
        })
    }
}

impl NetBackend for Tap {
    fn send(&mut self, frame: &[u8]) {
        // The kernel takes a whole frame or fails; a failure drops it.
        let _ = self.file.write(frame);
    }
}

impl Drop for Tap {
    /// Detaches from the interface completely (so a rebooted VM can attach again).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

fn receive(mut file: File, inbox: Inbox, notify: Notifier, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65536];
    let fd = file.as_raw_fd();
    while !stop.load(Ordering::Acquire) && inbox.device_alive() {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 100) };
        if r <= 0 {
            continue;
        }
        match file.read(&mut buf) {
            Ok(n) if n <= MAX_FRAME => {
                if inbox.deliver(&buf[..n]) {
                    notify();
                }
            }
            Ok(_) => {} // larger than the guest's MTU: dropped
            Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {}
            Err(_) => return,
        }
    }
}
