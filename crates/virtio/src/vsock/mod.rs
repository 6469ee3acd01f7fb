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

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use board::GuestRam;
use hostio::socket::SocketFile;

use crate::device::{read_config_bytes, VirtioDevice};
use crate::queue::{Queue, QueueError};
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
        if !(3..u32::MAX as u64).contains(&cid) {
            return Err(format!(
                "vsock cid {cid} is reserved (use 3 to {})",
                u32::MAX - 1
            ));
        }
        let (listener, socket_file) = bind(uds)?;
        let muxer = Arc::new(Mutex::new(Muxer::new(cid, uds)));
        let waker = Arc::new(Waker::new().map_err(|e| format!("vsock: {e}"))?);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (muxer, waker, stop) = (muxer.clone(), waker.clone(), stop.clone());
            std::thread::Builder::new()
                .name("vsock-host".into())
                .spawn(move || host::run(listener, muxer, waker, notify, stop))
                .map_err(|e| format!("vsock: {e}"))?
        };
        Ok(Vsock {
            cid,
            _socket_file: socket_file,
            muxer,
            waker,
            stop,
            thread: Some(thread),
        })
    }

    fn muxer(&self) -> std::sync::MutexGuard<'_, Muxer> {
        self.muxer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of open streams.
    pub fn streams(&self) -> usize {
        self.muxer().streams()
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
            // Event buffers wait for transport events (none are sent).
            EVENT => Ok(false),
            _ => Err(QueueError::Malformed("no such vsock queue")),
        }
    }

    fn reset(&mut self) {
        self.muxer().reset();
        self.waker.wake();
    }

    fn pending_queues(&mut self) -> u64 {
        if self.muxer().has_packet() {
            1 << RX
        } else {
            0
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
