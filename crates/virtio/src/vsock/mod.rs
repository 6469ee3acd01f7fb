//! virtio-vsock (device ID 19): stream sockets between the guest and host
//! programs, with no network configuration.
//!
//! The host side is one unix socket, `--vsock cid=N,uds=PATH`:
//! - a host program connects to PATH and writes `CONNECT <port>\n`; when a
//!   guest program listening on that vsock port accepts, it reads
//!   `OK <host port>\n` and the stream is open (if nobody listens, the
//!   socket is closed);
//! - a guest program connecting to the host (CID 2) port P reaches the host
//!   program listening on the unix socket `PATH_P`.
//!
//! The [`muxer::Muxer`] owns the streams and their flow control; a host
//! thread ([`host`]) moves their bytes. Streams are keyed by ports and
//! reach host sockets today; routing guest↔guest streams between the VMs of
//! one phone plugs in where the muxer refuses other CIDs.

mod host;
pub mod muxer;
pub mod packet;
pub mod router;

pub use router::{PeerStream, Routed, VsockRouter};

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use board::GuestRam;
use hostio::socket::SocketFile;

use crate::device::{read_config_bytes, VirtioDevice};
use crate::queue::{Queue, QueueError};
use crate::state::DeviceState;
use crate::Notifier;
use host::Waker;
use muxer::Muxer;
use packet::{Header, HEADER_LEN};

const RX: usize = 0;
const TX: usize = 1;
const EVENT: usize = 2;
/// Largest payload a guest may send in one packet (Linux sends at most 64 KiB).
const MAX_TX_PAYLOAD: u32 = 64 << 10;

/// The vsock device.
pub struct Vsock {
    cid: u64,
    _socket_file: SocketFile,
    muxer: Arc<Mutex<Muxer>>,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The driver must be told its transport was reset (after a restore:
    /// the host streams it knew are gone).
    reset_event_pending: bool,
}

/// Binds `path` (never replacing a file or a live socket), non-blocking.
fn bind(path: &Path) -> Result<(UnixListener, SocketFile), String> {
    let (listener, file) =
        hostio::socket::bind_listener(path).map_err(|e| format!("vsock socket: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("vsock socket '{}': {e}", path.display()))?;
    Ok((listener, file))
}

impl Vsock {
    /// A device giving the guest context ID `cid`, served on the unix socket
    /// `uds`; `notify` runs when the host side has packets for the guest.
    pub fn new(cid: u64, uds: &Path, notify: Notifier) -> Result<Self, String> {
        Self::with_router(cid, uds, None, notify)
    }

    /// Like [`Vsock::new`]; with a router, the guest's streams to other
    /// CIDs and to host ports go through it, and streams from other VMs
    /// arrive from it.
    pub fn with_router(
        cid: u64,
        uds: &Path,
        router: Option<Arc<dyn VsockRouter>>,
        notify: Notifier,
    ) -> Result<Self, String> {
        if !(3..u32::MAX as u64).contains(&cid) {
            return Err(format!(
                "vsock cid {cid} is reserved (use 3 to {})",
                u32::MAX - 1
            ));
        }
        let (listener, socket_file) = bind(uds)?;
        let muxer = Arc::new(Mutex::new(Muxer::with_router(cid, uds, router.clone())));
        let waker = Arc::new(Waker::new().map_err(|e| format!("vsock: {e}"))?);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (muxer, waker, stop) = (muxer.clone(), waker.clone(), stop.clone());
            std::thread::Builder::new()
                .name("vsock-host".into())
                .spawn(move || host::run(listener, router, muxer, waker, notify, stop))
                .map_err(|e| format!("vsock: {e}"))?
        };
        Ok(Vsock {
            cid,
            _socket_file: socket_file,
            muxer,
            waker,
            stop,
            thread: Some(thread),
            reset_event_pending: false,
        })
    }

    fn muxer(&self) -> std::sync::MutexGuard<'_, Muxer> {
        self.muxer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of open streams.
    pub fn streams(&self) -> usize {
        self.muxer().streams()
    }

    /// Sends VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (virtio 1.2, socket device, "Device Events") in
    /// the driver's next event buffer, if one is due.
    fn send_reset_event(&mut self, queue: &mut Queue, ram: &GuestRam) -> Result<bool, QueueError> {
        if !self.reset_event_pending {
            return Ok(false);
        }
        let Some(chain) = queue.pop(ram)? else {
            return Ok(false);
        };
        // struct virtio_vsock_event { le32 id; }, TRANSPORT_RESET = 0.
        let written = chain.write_at(ram, 0, &0u32.to_le_bytes())?;
        if written != 4 {
            return Err(QueueError::Malformed("vsock event buffer too short"));
        }
        queue.push_used(ram, chain.head, 4)?;
        self.reset_event_pending = false;
        Ok(true)
    }

    fn transmit(&mut self, queue: &mut Queue, ram: &GuestRam) -> Result<bool, QueueError> {
        let mut used = false;
        while let Some(chain) = queue.pop(ram)? {
            if !chain.writable.is_empty() {
                return Err(QueueError::Malformed(
                    "vsock transmit buffer is device-writable",
                ));
            }
            let head = chain.read_all(ram, HEADER_LEN)?;
            let h = Header::parse(&head).ok_or(QueueError::Malformed("vsock packet too short"))?;
            if h.len > MAX_TX_PAYLOAD || HEADER_LEN as u64 + h.len as u64 > chain.readable_len() {
                return Err(QueueError::Malformed(
                    "vsock packet length beyond its buffers",
                ));
            }
            let packet = chain.read_all(ram, HEADER_LEN + h.len as usize)?;
            self.muxer().from_guest(&h, &packet[HEADER_LEN..]);
            queue.push_used(ram, chain.head, 0)?;
            used = true;
        }
        if used {
            self.waker.wake();
        }
        Ok(used)
    }

    fn receive(&mut self, queue: &mut Queue, ram: &GuestRam) -> Result<bool, QueueError> {
        let mut used = false;
        while self.muxer().has_packet() {
            let Some(chain) = queue.pop(ram)? else { break };
            if !chain.readable.is_empty() {
                return Err(QueueError::Malformed(
                    "vsock receive buffer is device-readable",
                ));
            }
            let room = chain.writable_len();
            if room < HEADER_LEN as u64 {
                return Err(QueueError::Malformed("vsock receive buffer too small"));
            }
            let room = (room - HEADER_LEN as u64).min(1 << 20) as usize;
            let Some((h, payload)) = self.muxer().next_packet(room) else {
                queue.undo_pop();
                break;
            };
            chain.write_at(ram, 0, &h.to_bytes())?;
            chain.write_at(ram, HEADER_LEN as u64, &payload)?;
            queue.push_used(ram, chain.head, (HEADER_LEN + payload.len()) as u32)?;
            used = true;
        }
        if used {
            // Room freed for host data: the host thread may read again.
            self.waker.wake();
        }
        Ok(used)
    }
}

impl VirtioDevice for Vsock {
    fn device_id(&self) -> u32 {
        crate::spec::id::VSOCK
    }

    fn features(&self) -> u64 {
        0
    }

    fn num_queues(&self) -> usize {
        3
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&self.cid.to_le_bytes(), offset, data);
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
            // Event buffers wait for transport events: only a reset is sent.
            EVENT => self.send_reset_event(queue, ram),
            _ => Err(QueueError::Malformed("no such vsock queue")),
        }
    }

    fn reset(&mut self) {
        self.muxer().reset();
        self.waker.wake();
        self.reset_event_pending = false;
    }

    fn pending_queues(&mut self) -> u64 {
        let rx = if self.muxer().has_packet() {
            1 << RX
        } else {
            0
        };
        let event = if self.reset_event_pending {
            1 << EVENT
        } else {
            0
        };
        rx | event
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::Vsock { cid: self.cid }
    }

    /// The restored device keeps the context ID it was configured with —
    /// a VM restored elsewhere (a clone, another phone) may get another —
    /// and, as its host streams are gone, tells the driver its transport
    /// was reset: the driver then reads the context ID again and ends the
    /// streams it knew (as Linux's virtio-vsock driver does on that event).
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), String> {
        match *state {
            DeviceState::Vsock { .. } => {
                // Streams of the VM this device served until now (a restore
                // into a running VM) end with the ones the guest knew.
                self.muxer().reset();
                self.waker.wake();
                self.reset_event_pending = true;
                Ok(())
            }
            ref other => Err(crate::state::mismatch("vsock", other)),
        }
    }
}

impl Drop for Vsock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // The socket file goes with `socket_file`, after the thread.
    }
}

#[cfg(test)]
mod restore_tests {
    use super::*;

    /// One device-writable 8-byte buffer in the event queue of a small RAM.
    fn event_queue(ram: &GuestRam) -> Queue {
        let base = ram.base();
        let mut desc = [0u8; 16];
        desc[..8].copy_from_slice(&(base + 0x3000).to_le_bytes());
        desc[8..12].copy_from_slice(&8u32.to_le_bytes());
        desc[12..14].copy_from_slice(&crate::spec::DESC_WRITE.to_le_bytes());
        ram.write(base, &desc);
        // avail: flags 0, idx 1, ring[0] = descriptor 0.
        ram.write(base + 0x1000, &[0, 0, 1, 0, 0, 0]);
        ram.write(base + 0x3000, &[0xff; 8]);
        let mut q = Queue::default();
        q.size = 4;
        q.ready = true;
        q.desc = base;
        q.avail = base + 0x1000;
        q.used = base + 0x2000;
        q
    }

    #[test]
    fn a_restored_device_tells_the_driver_its_transport_was_reset() {
        let dir = tempfile::tempdir().unwrap();
        let ram = GuestRam::new(0x4000_0000, 1 << 20).unwrap();
        let mut v = Vsock::new(3, &dir.path().join("v.sock"), Arc::new(|| ())).unwrap();
        let mut q = event_queue(&ram);
        assert_eq!(v.pending_queues() & 1 << EVENT, 0);
        assert!(!v.process(EVENT, &mut q, &ram).unwrap(), "no event before");

        let saved = v.save_state();
        assert!(v.restore_state(&DeviceState::None).is_err());
        // A state saved where the guest had another CID (a VM moved or
        // cloned): the device keeps its own, the driver re-reads it on
        // the reset event.
        v.restore_state(&DeviceState::Vsock { cid: 4 }).unwrap();
        assert_eq!(v.cid, 3);
        v.restore_state(&saved).unwrap();
        assert_ne!(v.pending_queues() & 1 << EVENT, 0, "the event is due");
        assert!(v.process(EVENT, &mut q, &ram).unwrap());
        let mut used = [0u8; 12];
        ram.read(ram.base() + 0x2000, &mut used);
        assert_eq!(u16::from_le_bytes([used[2], used[3]]), 1, "one buffer used");
        assert_eq!(&used[4..12], &[0, 0, 0, 0, 4, 0, 0, 0], "head 0, 4 bytes");
        let mut event = [0u8; 8];
        ram.read(ram.base() + 0x3000, &mut event);
        assert_eq!(&event[..4], &[0; 4], "VIRTIO_VSOCK_EVENT_TRANSPORT_RESET");
        assert_eq!(v.pending_queues() & 1 << EVENT, 0, "sent once");
    }
}
