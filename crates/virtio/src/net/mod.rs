//! virtio-net (device ID 1): an Ethernet interface whose frames go to a
//! [`NetBackend`] — a host TAP device ([`tap`]) or a virtual switch of unix
//! datagram sockets shared by VMs ([`switch`]).
//!
//! No offloads are offered: the guest sends and receives plain frames of at
//! most [`MAX_FRAME`] bytes, each behind a 12-byte `virtio_net_hdr_v1`.

pub mod switch;
pub mod tap;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use board::GuestRam;

use crate::device::{read_config_bytes, VirtioDevice};
use crate::queue::{Queue, QueueError};
use crate::spec::id;
pub use crate::spec::network::HEADER_LEN;
use crate::spec::network::{F_MAC, F_STATUS, S_LINK_UP};
use crate::state::DeviceState;

/// Largest Ethernet frame carried (1500-byte MTU plus the 14-byte header
/// and a VLAN tag).
pub const MAX_FRAME: usize = 1518;
/// Smallest frame accepted from the guest (an Ethernet header).
const MIN_FRAME: usize = 14;
/// Frames held for a guest that posts no receive buffers; older frames are
/// dropped, as a NIC's ring would overflow.
const INBOX_FRAMES: usize = 512;

const RX: usize = 0;
const TX: usize = 1;

/// A MAC address.
pub type Mac = [u8; 6];

/// Where frames the guest sends go.
pub trait NetBackend: Send {
    /// Sends one Ethernet frame. A congested or unreachable destination
    /// drops the frame, as a real network would.
    fn send(&mut self, frame: &[u8]);
}

/// Frames received for the guest, filled by the backend's receive thread.
#[derive(Clone, Default)]
pub struct Inbox {
    frames: Arc<Mutex<VecDeque<Vec<u8>>>>,
}

impl Inbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Vec<u8>>> {
        self.frames.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame for the guest (call the board's poll afterwards);
    /// returns false when it was not taken (runt or oversized frame).
    pub fn deliver(&self, frame: &[u8]) -> bool {
        if !(MIN_FRAME..=MAX_FRAME).contains(&frame.len()) {
            return false;
        }
        let mut q = self.lock();
        if q.len() >= INBOX_FRAMES {
            q.pop_front();
        }
        q.push_back(frame.to_vec());
        true
    }

    /// Frames waiting for the guest.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no frame waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the device still exists (the receive thread stops when not).
    pub fn device_alive(&self) -> bool {
        Arc::strong_count(&self.frames) > 1
    }
}

/// Counters of one interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames the guest sent.
    pub tx_frames: u64,
    /// Frames handed to the guest.
    pub rx_frames: u64,
}

/// The network device.
pub struct Net {
    mac: Mac,
    backend: Box<dyn NetBackend>,
    inbox: Inbox,
    stats: NetStats,
}

impl Net {
    /// A NIC with address `mac` sending through `backend` and receiving
    /// what is delivered to `inbox`.
    pub fn new(mac: Mac, backend: Box<dyn NetBackend>, inbox: Inbox) -> Self {
        Net {
            mac,
            backend,
            inbox,
            stats: NetStats::default(),
        }
    }

    /// Frame counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    fn transmit(&mut self, queue: &mut Queue, ram: &GuestRam) -> Result<bool, QueueError> {
        let mut used = false;
        while let Some(chain) = queue.pop(ram)? {
            if !chain.writable.is_empty() {
                return Err(QueueError::Malformed("transmit buffer is device-writable"));
            }
            let len: u64 = chain.readable.iter().map(|b| b.len as u64).sum();
            if len > (HEADER_LEN + MAX_FRAME) as u64 {
                return Err(QueueError::Malformed(
                    "transmitted frame larger than the MTU",
                ));
            }
            let bytes = chain.read_all(ram, HEADER_LEN + MAX_FRAME)?;
            if bytes.len() >= HEADER_LEN + MIN_FRAME {
                self.backend.send(&bytes[HEADER_LEN..]);
                self.stats.tx_frames += 1;
            }
            queue.push_used(ram, chain.head, 0)?;
            used = true;
        }
        Ok(used)
    }

    fn receive(&mut self, queue: &mut Queue, ram: &GuestRam) -> Result<bool, QueueError> {
        let mut used = false;
        loop {
            if self.inbox.is_empty() {
                break;
            }
            let Some(chain) = queue.pop(ram)? else { break };
            if !chain.readable.is_empty() {
                return Err(QueueError::Malformed("receive buffer is device-readable"));
            }
            let frame = self.inbox.lock().pop_front().unwrap_or_default();
            if chain.writable_len() < (HEADER_LEN + frame.len()) as u64 {
                // Without mergeable buffers every buffer must hold a whole frame.
                return Err(QueueError::Malformed(
                    "receive buffer too small for a frame",
                ));
            }
            let mut header = [0u8; HEADER_LEN];
            header[10] = 1; // num_buffers
            chain.write_at(ram, 0, &header)?;
            chain.write_at(ram, HEADER_LEN as u64, &frame)?;
            queue.push_used(ram, chain.head, (HEADER_LEN + frame.len()) as u32)?;
            self.stats.rx_frames += 1;
            used = true;
        }
        Ok(used)
    }
}

impl VirtioDevice for Net {
    fn device_id(&self) -> u32 {
        id::NET
    }

    fn features(&self) -> u64 {
        F_MAC | F_STATUS
    }

    fn num_queues(&self) -> usize {
        2
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // mac[6], status, max_virtqueue_pairs.
        let mut config = [0u8; 10];
        config[..6].copy_from_slice(&self.mac);
        config[6..8].copy_from_slice(&S_LINK_UP.to_le_bytes());
        config[8..10].copy_from_slice(&1u16.to_le_bytes());
        read_config_bytes(&config, offset, data);
    }

    fn process(
        &mut self,
        index: usize,
        queue: &mut Queue,
        ram: &GuestRam,
    ) -> Result<bool, QueueError> {
        match index {
            RX => self.receive(queue, ram),
            TX => self.transmit(queue, ram),
            _ => Err(QueueError::Malformed("no such network queue")),
        }
    }

    fn reset(&mut self) {
        self.inbox.lock().clear();
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::Net { mac: self.mac }
    }

    /// The guest keeps its MAC address: the restored NIC takes it over.
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), String> {
        match *state {
            DeviceState::Net { mac } => {
                self.mac = mac;
                Ok(())
            }
            ref other => Err(crate::state::mismatch("network", other)),
        }
    }

    fn pending_queues(&mut self) -> u64 {
        if self.inbox.is_empty() {
            0
        } else {
            1 << RX
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (a unicast address).
pub fn parse_mac(text: &str) -> Result<Mac, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let bad = || format!("'{text}' is not a MAC address like 02:00:00:00:00:01");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(&parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *m = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 != 0 {
        return Err(format!("'{text}' is a multicast address, not a NIC's"));
    }
    if mac == [0; 6] {
        return Err(format!("'{text}' is the all-zero address, not a NIC's"));
    }
    Ok(mac)
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A random locally administered unicast MAC address.
pub fn random_mac() -> Mac {
    let mut mac = [0u8; 6];
    // SAFETY: getrandom writes at most 6 bytes into the 6-byte buffer.
    let n = unsafe { libc::getrandom(mac.as_mut_ptr() as *mut libc::c_void, 6, 0) };
    if n != 6 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()) as u64
            ^ std::process::id() as u64;
        mac.copy_from_slice(&t.to_le_bytes()[..6]);
    }
    mac[0] = (mac[0] & 0xfc) | 0x02;
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:aB:00:10:ff:01"),
            Ok([2, 0xab, 0, 0x10, 0xff, 1])
        );
        assert!(parse_mac("01:00:5e:00:00:01").is_err());
        assert!(parse_mac("02:00:00:00:00").is_err());
        assert!(parse_mac("02:00:00:00:00:0g").is_err());
        assert!(parse_mac("002:00:00:00:00:01").is_err());
        let m = random_mac();
        assert_eq!(m[0] & 3, 2, "locally administered unicast");
        assert_eq!(parse_mac(&format_mac(&m)), Ok(m));
    }

    #[test]
    fn inbox_bounds() {
        let inbox = Inbox::default();
        assert!(!inbox.deliver(&[0; 13]));
        assert!(!inbox.deliver(&[0; MAX_FRAME + 1]));
        for i in 0..INBOX_FRAMES + 3 {
            assert!(inbox.deliver(&[i as u8; 60]));
        }
        assert_eq!(inbox.len(), INBOX_FRAMES);
        assert_eq!(inbox.lock().front().unwrap()[0], 3, "oldest frames dropped");
    }
}
