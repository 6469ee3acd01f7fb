//! A virtual Ethernet switch between VMs with no process of its own and no
//! privileges: its ports are unix datagram sockets in one directory, one per
//! NIC, named after the NIC's MAC address (`02-00-00-00-00-01.sock`).
//!
//! A frame for a unicast address goes straight to that NIC's socket;
//! broadcast, multicast and frames for unknown addresses are flooded to
//! every other port. Sends never block: a full port drops the frame. A
//! socket left behind by a VM that died (nobody receives on it) is removed
//! by the first sender that finds it dead.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hostio::socket::SocketFile;

use super::{format_mac, Inbox, Mac, NetBackend, MAX_FRAME};
use crate::Notifier;

/// One NIC's port on a switch directory.
pub struct SwitchPort {
    dir: PathBuf,
    own: PathBuf,
    /// Removes our socket when the NIC goes.
    _own_file: SocketFile,
    sender: UnixDatagram,
}

/// Makes sure the switch directory exists: an existing directory, or one
/// new directory (mode 0700) in an existing parent — never a chain of them.
fn open_switch_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(format!(
                "network switch '{}' is not a directory",
                dir.display()
            ))
        }
        Err(_) => {}
    }
    let parent = match dir.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => Path::new("/"),
    };
    if !parent.is_dir() {
        return Err(format!(
            "network switch '{}': its parent directory '{}' does not exist",
            dir.display(),
            parent.display()
        ));
    }
    let made = std::fs::DirBuilder::new().mode(0o700).create(dir);
    match made {
        Ok(()) => Ok(()),
        // Another VM made it first.
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(format!("network switch '{}': {e}", dir.display())),
    }
}

fn port_path(dir: &Path, mac: &Mac) -> PathBuf {
    dir.join(format!("{}.sock", format_mac(mac).replace(':', "-")))
}

impl SwitchPort {
    /// Plugs the NIC `mac` into the switch at `dir` (created if missing).
    /// Frames for it are delivered to `inbox` by a thread of its own, which
    /// calls `notify` after each and ends when the device is gone.
    pub fn join(dir: &Path, mac: Mac, inbox: Inbox, notify: Notifier) -> Result<Self, String> {
        let what = |e: std::io::Error| format!("network switch '{}': {e}", dir.display());
        open_switch_dir(dir)?;
        let own = port_path(dir, &mac);
        let (receiver, own_file) = match hostio::socket::bind_datagram(&own) {
            Ok(bound) => bound,
            Err(hostio::socket::SocketError::InUse(_)) => {
                return Err(format!(
                    "network switch '{}': MAC {} is already plugged in",
                    dir.display(),
                    format_mac(&mac)
                ))
            }
            Err(e) => return Err(format!("network switch '{}': {e}", dir.display())),
        };
        receiver
            .set_read_timeout(Some(Duration::from_millis(500)))
            .map_err(what)?;
        let sender = UnixDatagram::unbound().map_err(what)?;
        sender.set_nonblocking(true).map_err(what)?;
        std::thread::Builder::new()
            .name("net-switch-rx".into())
            .spawn(move || receive(receiver, inbox, notify))
            .map_err(what)?;
        Ok(SwitchPort {
            dir: dir.to_path_buf(),
            own,
            _own_file: own_file,
            sender,
        })
    }

    /// Sends to one port; returns false if the port does not exist.
    fn send_to(&self, path: &Path, frame: &[u8]) -> bool {
        match self.sender.send_to(frame, path) {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                // Its VM died without cleaning up — if it is a socket at all:
                // anything else in the directory is the user's.
                let is_socket =
                    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
                if is_socket {
                    let _ = std::fs::remove_file(path);
                }
                true
            }
            // Full (WouldBlock) or anything else: the frame is dropped.
            Err(_) => true,
        }
    }

    fn flood(&self, frame: &[u8]) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path != self.own && path.extension().is_some_and(|e| e == "sock") {
                self.send_to(&path, frame);
            }
        }
    }
}

impl NetBackend for SwitchPort {
    fn send(&mut self, frame: &[u8]) {
        let dest: Mac = frame[..6].try_into().expect("frames are at least 14 bytes");
        if dest[0] & 1 == 0 {
            let path = port_path(&self.dir, &dest);
            if path != self.own && self.send_to(&path, frame) {
                return;
            }
        }
        self.flood(frame);
    }
}

fn receive(socket: UnixDatagram, inbox: Inbox, notify: Notifier) {
    let mut buf = vec![0u8; MAX_FRAME + 1];
    while inbox.device_alive() {
        match socket.recv(&mut buf) {
            Ok(n) => {
                if inbox.deliver(&buf[..n]) {
                    notify();
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn frame(dst: Mac, src: Mac, tag: u8) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[tag; 50]);
        f
    }

    fn wait_for(inbox: &Inbox, n: usize) -> bool {
        for _ in 0..200 {
            if inbox.len() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn unicast_broadcast_and_dead_ports() {
        let dir = std::env::temp_dir().join(format!("pv-switch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let macs: Vec<Mac> = (1..=3).map(|i| [2, 0, 0, 0, 0, i]).collect();
        let inboxes: Vec<Inbox> = (0..3).map(|_| Inbox::default()).collect();
        let mut ports: Vec<SwitchPort> = macs
            .iter()
            .zip(&inboxes)
            .map(|(m, i)| SwitchPort::join(&dir, *m, i.clone(), Arc::new(|| {})).unwrap())
            .collect();
        assert!(SwitchPort::join(&dir, macs[0], Inbox::default(), Arc::new(|| {})).is_err());
        // Unicast reaches only its port.
        ports[0].send(&frame(macs[1], macs[0], 7));
        assert!(wait_for(&inboxes[1], 1));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!((inboxes[0].len(), inboxes[2].len()), (0, 0));
        // Broadcast reaches everybody else.
        ports[2].send(&frame([0xff; 6], macs[2], 9));
        assert!(wait_for(&inboxes[0], 1) && wait_for(&inboxes[1], 2));
        assert_eq!(inboxes[2].len(), 0);
        // A dead VM's socket is cleaned up by the next sender.
        let dead = port_path(&dir, &[2, 0, 0, 0, 0, 9]);
        drop(UnixDatagram::bind(&dead).unwrap());
        ports[0].send(&frame([0xff; 6], macs[0], 1));
        assert!(!dead.exists());
        // Leaving the switch removes the port.
        let p = ports.pop().unwrap();
        drop(p);
        assert!(!port_path(&dir, &macs[2]).exists());
        drop(ports);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn switch_directories_are_never_made_in_chains() {
        let base = tempfile::tempdir().unwrap();
        let deep = base.path().join("a/b/lan");
        let e = SwitchPort::join(&deep, [2, 0, 0, 0, 0, 1], Inbox::default(), Arc::new(|| {}))
            .err()
            .unwrap();
        assert!(e.contains("parent directory"), "{e}");
        assert!(!base.path().join("a").exists());
        // One level is made; a user's *.sock file there survives a flood.
        let lan = base.path().join("lan");
        let p = SwitchPort::join(&lan, [2, 0, 0, 0, 0, 1], Inbox::default(), Arc::new(|| {}));
        let mut p = p.unwrap();
        std::fs::write(lan.join("notes.sock"), b"mine").unwrap();
        p.send(&frame([0xff; 6], [2, 0, 0, 0, 0, 1], 3));
        assert_eq!(std::fs::read(lan.join("notes.sock")).unwrap(), b"mine");
        let file = base.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = SwitchPort::join(&file, [2, 0, 0, 0, 0, 2], Inbox::default(), Arc::new(|| {}))
            .err()
            .unwrap();
        assert!(e.contains("not a directory"), "{e}");
    }
}
