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
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{format_mac, Inbox, Mac, NetBackend, MAX_FRAME};
use crate::Notifier;

/// One NIC's port on a switch directory.
pub struct SwitchPort {
    dir: PathBuf,
    own: PathBuf,
    sender: UnixDatagram,
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
        std::fs::create_dir_all(dir).map_err(what)?;
        if !dir.is_dir() {
            return Err(format!(
                "network switch '{}' is not a directory",
                dir.display()
            ));
        }
        let own = port_path(dir, &mac);
        if own.exists() {
            // A live NIC answers; a dead one's socket refuses the connection.
            let probe = UnixDatagram::unbound().map_err(what)?;
            match probe.connect(&own) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    let _ = std::fs::remove_file(&own);
                }
                _ => {
                    return Err(format!(
                        "network switch '{}': MAC {} is already plugged in",
                        dir.display(),
                        format_mac(&mac)
                    ))
                }
            }
        }
        let receiver = UnixDatagram::bind(&own).map_err(what)?;
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
            sender,
        })
    }

    /// Sends to one port; returns false if the port does not exist.
    fn send_to(&self, path: &Path, frame: &[u8]) -> bool {
        match self.sender.send_to(frame, path) {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                // Its VM died without cleaning up.
                let _ = std::fs::remove_file(path);
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

impl Drop for SwitchPort {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.own);
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
}
