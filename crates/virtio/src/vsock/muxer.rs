//! The vsock connection table: every guest↔host stream, its state, its
//! buffers and its credit (virtio 1.2 §5.10.6.3), independent of queues and
//! threads. The device feeds it the guest's packets and asks it for packets
//! to give the guest; the host thread moves bytes between it and the host's
//! unix streams.
//!
//! Flow control both ways: bytes for the guest are read from the host only
//! while the guest has advertised room for them, and bytes from the guest
//! are held (at most [`BUF_ALLOC`] per stream, the room we advertise) until
//! the host program takes them; a guest that overruns its credit has its
//! stream reset.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Arc;

use super::packet::{op, Header, HOST_CID, SHUTDOWN_RCV, SHUTDOWN_SEND, TYPE_STREAM};
use super::router::{PeerStream, Routed, VsockRouter};

/// Receive buffer advertised to the guest for each stream.
pub const BUF_ALLOC: u32 = 256 << 10;
/// Largest payload of one packet to the guest.
const MAX_PAYLOAD: usize = 64 << 10;
/// How long a host program's CONNECT waits for the guest to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// First port number the host side uses for streams it opens.
const FIRST_HOST_PORT: u32 = 1 << 30;

/// A stream's identity: (peer CID, peer port, guest port). The peer is the
/// host (CID 2) or, through a [`VsockRouter`], another VM.
pub type Key = (u64, u32, u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The host asked; waiting for the guest's RESPONSE.
    Connecting(Instant),
    /// The guest asked another VM (through the router); waiting for that
    /// VM's `OK <port>` line on the stream.
    AwaitingPeer(Instant),
    /// Data flows.
    Established,
}

/// One guest↔host stream.
struct Conn {
    stream: UnixStream,
    state: State,
    /// Bytes not yet written to the host stream: the first `preamble` are
    /// ours (the handshake's "OK" line), the rest the guest's.
    to_host: VecDeque<u8>,
    preamble: usize,
    /// Bytes received from the guest (wrapping).
    rx_cnt: u32,
    /// Bytes written to the host stream (wrapping).
    fwd_cnt: u32,
    /// The fwd_cnt last told to the guest.
    fwd_cnt_told: u32,
    /// Host bytes not yet sent to the guest (never more than its credit).
    to_guest: VecDeque<u8>,
    /// The peer's `OK <port>` line as far as it came (state AwaitingPeer).
    peer_line: Vec<u8>,
    /// Payload bytes sent to the guest (wrapping).
    tx_cnt: u32,
    /// The guest's receive buffer and how much of it it has consumed.
    peer_buf_alloc: u32,
    peer_fwd_cnt: u32,
    /// The host program will send no more.
    host_eof: bool,
    /// We told the guest so.
    eof_told: bool,
    /// The guest will send no more: shut the host stream's write side once
    /// `to_host` is drained.
    guest_done_sending: bool,
    /// The guest closed the stream: reset it once `to_host` is drained.
    guest_closed: bool,
}

impl Conn {
    fn new(stream: UnixStream, state: State) -> Self {
        Conn {
            stream,
            state,
            to_host: VecDeque::new(),
            preamble: 0,
            rx_cnt: 0,
            fwd_cnt: 0,
            fwd_cnt_told: 0,
            to_guest: VecDeque::new(),
            peer_line: Vec::new(),
            tx_cnt: 0,
            peer_buf_alloc: 0,
            peer_fwd_cnt: 0,
            host_eof: false,
            eof_told: false,
            guest_done_sending: false,
            guest_closed: false,
        }
    }

    /// Bytes the guest can still take.
    fn peer_credit(&self) -> u32 {
        let in_flight = self.tx_cnt.wrapping_sub(self.peer_fwd_cnt);
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    /// How many more host bytes may be read for the guest.
    pub fn read_room(&self) -> usize {
        if self.state != State::Established || self.host_eof {
            return 0;
        }
        (self.peer_credit() as usize).saturating_sub(self.to_guest.len())
    }
}

/// A host program that connected to the vsock socket and has not finished
/// its `CONNECT <port>` line yet.
struct Pending {
    stream: UnixStream,
    line: Vec<u8>,
    since: Instant,
}

/// A control packet for the guest: (key, op, flags).
type Control = (Key, u16, u32);

/// All streams of one vsock device.
pub struct Muxer {
    guest_cid: u64,
    /// Where connections to other VMs (and, when set, to host ports) go.
    router: Option<Arc<dyn VsockRouter>>,
    /// Host programs listen on `<uds>_<port>` for guest connections.
    uds: PathBuf,
    conns: HashMap<Key, Conn>,
    pending: Vec<Pending>,
    control: VecDeque<Control>,
    next_host_port: u32,
    /// Round-robin position for fairness between streams.
    turn: usize,
}

/// What the host thread should watch on one stream.
pub struct Interest {
    /// Which stream (a connection or a pending handshake).
    pub token: Token,
    /// Its file descriptor.
    pub fd: std::os::fd::RawFd,
    /// Wants to read.
    pub read: bool,
    /// Wants to write.
    pub write: bool,
}

/// Names a stream the host thread watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// An established or connecting stream.
    Conn(Key),
    /// A handshake in progress (index into the pending list).
    Pending(usize),
}

fn would_block(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted)
}

impl Muxer {
    /// Streams for guest `guest_cid`; guest connections to host port P go to
    /// the unix socket `<uds>_P`.
    pub fn new(guest_cid: u64, uds: &Path) -> Self {
        Self::with_router(guest_cid, uds, None)
    }

    /// Like [`Muxer::new`]; with a router, the guest's connections to
    /// other CIDs — and to host ports — are asked of the router instead.
    pub fn with_router(guest_cid: u64, uds: &Path, router: Option<Arc<dyn VsockRouter>>) -> Self {
        Muxer {
            guest_cid,
            router,
            uds: uds.to_path_buf(),
            conns: HashMap::new(),
            pending: Vec::new(),
            control: VecDeque::new(),
            next_host_port: FIRST_HOST_PORT,
            turn: 0,
        }
    }

    /// Drops every stream (the driver reset the device).
    pub fn reset(&mut self) {
        self.conns.clear();
        self.control.clear();
    }

    /// Number of open streams.
    pub fn streams(&self) -> usize {
        self.conns.len()
    }

    fn reply(&mut self, key: Key, op: u16, flags: u32) {
        self.control.push_back((key, op, flags));
    }

    fn reset_conn(&mut self, key: Key) {
        self.conns.remove(&key);
        self.reply(key, op::RST, 0);
    }

    /// Handles one packet from the guest (`payload` is its data, for RW).
    pub fn from_guest(&mut self, h: &Header, payload: &[u8]) {
        let key = (h.dst_cid, h.dst_port, h.src_port);
        // The guest cannot choose its source CID; only a router carries
        // streams to CIDs other than the host's.
        let routable = h.dst_cid == HOST_CID
            || (self.router.is_some() && h.dst_cid != self.guest_cid && h.dst_cid > HOST_CID);
        if h.src_cid != self.guest_cid || !routable || h.kind != TYPE_STREAM {
            if h.op != op::RST {
                self.reply(key, op::RST, 0);
            }
            return;
        }
        if h.op == op::REQUEST {
            self.guest_connects(key);
            return;
        }
        let Some(conn) = self.conns.get_mut(&key) else {
            if h.op != op::RST {
                self.reply(key, op::RST, 0);
            }
            return;
        };
        conn.peer_buf_alloc = h.buf_alloc;
        conn.peer_fwd_cnt = h.fwd_cnt;
        match h.op {
            op::RESPONSE => match conn.state {
                State::Connecting(_) => {
                    conn.state = State::Established;
                    let ok = format!("OK {}\n", key.1);
                    conn.preamble = ok.len();
                    conn.to_host.extend(ok.as_bytes().iter().copied());
                    self.flush(key);
                }
                State::Established | State::AwaitingPeer(_) => self.reset_conn(key),
            },
            op::RW => {
                let free = BUF_ALLOC - conn.rx_cnt.wrapping_sub(conn.fwd_cnt).min(BUF_ALLOC);
                if conn.state != State::Established
                    || payload.len() > free as usize
                    || conn.guest_done_sending
                {
                    self.reset_conn(key);
                    return;
                }
                conn.to_host.extend(payload.iter().copied());
                conn.rx_cnt = conn.rx_cnt.wrapping_add(payload.len() as u32);
                self.flush(key);
            }
            op::CREDIT_UPDATE => {}
            op::CREDIT_REQUEST => self.reply(key, op::CREDIT_UPDATE, 0),
            op::SHUTDOWN => {
                if h.flags & SHUTDOWN_SEND != 0 {
                    conn.guest_done_sending = true;
                }
                if h.flags & (SHUTDOWN_SEND | SHUTDOWN_RCV) == SHUTDOWN_SEND | SHUTDOWN_RCV {
                    conn.guest_closed = true;
                }
                self.flush(key);
            }
            op::RST => {
                self.conns.remove(&key);
            }
            _ => self.reset_conn(key),
        }
    }

    /// The guest connects to port `key.1` of CID `key.0`: through the
    /// router when there is one, else (the host) to `<uds>_<port>`.
    fn guest_connects(&mut self, key: Key) {
        if self.conns.contains_key(&key) {
            self.reset_conn(key);
            return;
        }
        let routed = match &self.router {
            Some(router) => router.connect(key.0, key.1, key.2),
            None => {
                let mut path = self.uds.clone().into_os_string();
                path.push(format!("_{}", key.1));
                UnixStream::connect(&path).ok().map(Routed::Established)
            }
        };
        let (stream, state) = match routed {
            Some(Routed::Established(s)) => (s, State::Established),
            Some(Routed::AwaitingPeer(s)) => (s, State::AwaitingPeer(Instant::now())),
            None => return self.reply(key, op::RST, 0),
        };
        if stream.set_nonblocking(true).is_err() {
            return self.reply(key, op::RST, 0);
        }
        self.conns.insert(key, Conn::new(stream, state));
        if state == State::Established {
            self.reply(key, op::RESPONSE, 0);
        }
    }

    /// Another VM's stream for guest port `p.dst_port`, handed over by the
    /// router: offered to the guest as a connection from `p.src_cid`.
    pub fn peer_connects(&mut self, p: PeerStream) {
        let key = (p.src_cid, p.src_port, p.dst_port);
        if p.src_cid <= HOST_CID
            || p.src_cid == self.guest_cid
            || self.conns.contains_key(&key)
            || p.stream.set_nonblocking(true).is_err()
        {
            return; // dropping the stream tells the peer
        }
        self.conns
            .insert(key, Conn::new(p.stream, State::Connecting(Instant::now())));
        self.reply(key, op::REQUEST, 0);
    }

    /// Reads the peer's `OK <port>` line of an outgoing VM-to-VM stream;
    /// once it is complete the guest's connect succeeds.
    fn read_peer_ok(&mut self, key: Key) {
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let mut byte = [0u8; 1];
        loop {
            match conn.stream.read(&mut byte) {
                Ok(1) if byte[0] == b'\n' => break,
                Ok(1) if conn.peer_line.len() < 32 => conn.peer_line.push(byte[0]),
                Err(e) if would_block(&e) => return,
                // Closed, refused or nonsense: the connect fails.
                _ => return self.reset_conn(key),
            }
        }
        if !conn.peer_line.starts_with(b"OK ") {
            return self.reset_conn(key);
        }
        conn.peer_line = Vec::new();
        conn.state = State::Established;
        self.reply(key, op::RESPONSE, 0);
    }

    /// A host program connected to the vsock socket.
    pub fn host_connects(&mut self, stream: UnixStream) {
        if stream.set_nonblocking(true).is_ok() {
            self.pending.push(Pending {
                stream,
                line: Vec::new(),
                since: Instant::now(),
            });
        }
    }

    /// Writes what the guest sent to the host stream, as far as it goes
    /// without blocking; settles shutdowns and credit updates.
    fn flush(&mut self, key: Key) {
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        while !conn.to_host.is_empty() {
            let (a, _) = conn.to_host.as_slices();
            match conn.stream.write(a) {
                Ok(0) => break,
                Ok(n) => {
                    conn.to_host.drain(..n);
                    let ours = n.min(conn.preamble);
                    conn.preamble -= ours;
                    conn.fwd_cnt = conn.fwd_cnt.wrapping_add((n - ours) as u32);
                }
                Err(e) if would_block(&e) => break,
                Err(_) => {
                    // The host program went away.
                    self.reset_conn(key);
                    return;
                }
            }
        }
        // Every packet to the guest carries fwd_cnt; an update of its own is
        // only needed once a quarter of the buffer was freed unannounced
        // (until then the guest has at least three quarters of its credit).
        let unannounced = conn.fwd_cnt.wrapping_sub(conn.fwd_cnt_told);
        if unannounced >= BUF_ALLOC / 4
            && !self
                .control
                .iter()
                .any(|c| c.0 == key && c.1 == op::CREDIT_UPDATE)
        {
            self.control.push_back((key, op::CREDIT_UPDATE, 0));
        }
        if !conn.to_host.is_empty() {
            return;
        }
        if conn.guest_closed {
            let _ = conn.stream.shutdown(Shutdown::Both);
            self.reset_conn(key);
            return;
        }
        if conn.guest_done_sending {
            let _ = conn.stream.shutdown(Shutdown::Write);
        }
    }

    /// What the host thread should watch now.
    pub fn interests(&self) -> Vec<Interest> {
        use std::os::fd::AsRawFd;
        let mut v: Vec<Interest> = self
            .conns
            .iter()
            .filter_map(|(k, c)| {
                let read = c.read_room() > 0 || matches!(c.state, State::AwaitingPeer(_));
                let write = !c.to_host.is_empty();
                (read || write).then(|| Interest {
                    token: Token::Conn(*k),
                    fd: c.stream.as_raw_fd(),
                    read,
                    write,
                })
            })
            .collect();
        for (i, p) in self.pending.iter().enumerate() {
            v.push(Interest {
                token: Token::Pending(i),
                fd: p.stream.as_raw_fd(),
                read: true,
                write: false,
            });
        }
        v
    }

    /// The host thread saw `token` ready: move bytes.
    pub fn ready(&mut self, token: Token, readable: bool, writable: bool) {
        match token {
            Token::Pending(i) => {
                if readable {
                    self.read_handshake(i);
                }
            }
            Token::Conn(key) => {
                if writable {
                    self.flush(key);
                }
                if readable {
                    let awaiting = self
                        .conns
                        .get(&key)
                        .is_some_and(|c| matches!(c.state, State::AwaitingPeer(_)));
                    if awaiting {
                        self.read_peer_ok(key);
                    } else {
                        self.read_host(key);
                    }
                }
            }
        }
    }

    /// Reads host bytes for the guest, within its credit.
    fn read_host(&mut self, key: Key) {
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let room = conn.read_room().min(MAX_PAYLOAD);
        if room == 0 {
            return;
        }
        let mut buf = vec![0u8; room];
        match conn.stream.read(&mut buf) {
            Ok(0) => conn.host_eof = true,
            Ok(n) => conn.to_guest.extend(&buf[..n]),
            Err(e) if would_block(&e) => {}
            Err(_) => self.reset_conn(key),
        }
    }

    /// Reads a host program's `CONNECT <port>\n` line.
    fn read_handshake(&mut self, i: usize) {
        let Some(p) = self.pending.get_mut(i) else {
            return;
        };
        let mut byte = [0u8; 1];
        // Byte by byte: what follows the line is stream data, left in the socket.
        loop {
            match p.stream.read(&mut byte) {
                Ok(0) => {
                    p.line.clear();
                    p.since = Instant::now() - CONNECT_TIMEOUT; // closed: drop it
                    return;
                }
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) if p.line.len() < 64 => p.line.push(byte[0]),
                Ok(_) => {
                    p.since = Instant::now() - CONNECT_TIMEOUT;
                    return;
                }
                Err(e) if would_block(&e) => return,
                Err(_) => {
                    p.since = Instant::now() - CONNECT_TIMEOUT;
                    return;
                }
            }
        }
        let p = self.pending.swap_remove(i);
        let text = String::from_utf8_lossy(&p.line);
        let port = text
            .trim_end_matches('\r')
            .strip_prefix("CONNECT ")
            .and_then(|n| n.trim().parse::<u32>().ok());
        let Some(guest_port) = port else {
            let mut s = p.stream;
            let _ = s.write_all(b"ERROR expected CONNECT <port>\n");
            return;
        };
        let host_port = self.free_host_port(guest_port);
        let key = (HOST_CID, host_port, guest_port);
        self.conns
            .insert(key, Conn::new(p.stream, State::Connecting(Instant::now())));
        self.reply(key, op::REQUEST, 0);
    }

    fn free_host_port(&mut self, guest_port: u32) -> u32 {
        loop {
            let port = self.next_host_port;
            self.next_host_port = self.next_host_port.wrapping_add(1).max(FIRST_HOST_PORT);
            if !self.conns.contains_key(&(HOST_CID, port, guest_port)) {
                return port;
            }
        }
    }

    /// Ends handshakes and connection attempts that took too long; returns
    /// whether the guest has to be told.
    pub fn expire(&mut self) -> bool {
        let now = Instant::now();
        self.pending
            .retain(|p| now.duration_since(p.since) < CONNECT_TIMEOUT);
        let stale: Vec<Key> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                matches!(c.state, State::Connecting(t) | State::AwaitingPeer(t)
                    if now.duration_since(t) >= CONNECT_TIMEOUT)
            })
            .map(|(k, _)| *k)
            .collect();
        let any = !stale.is_empty();
        for k in stale {
            self.reset_conn(k);
        }
        any
    }

    /// Whether there is a packet for the guest.
    pub fn has_packet(&mut self) -> bool {
        if !self.control.is_empty() {
            return true;
        }
        self.conns.values().any(|c| {
            (!c.to_guest.is_empty() && c.peer_credit() > 0)
                || (c.host_eof && !c.eof_told && c.to_guest.is_empty())
        })
    }

    /// The next packet for the guest with at most `room` payload bytes:
    /// its header and payload.
    pub fn next_packet(&mut self, room: usize) -> Option<(Header, Vec<u8>)> {
        if let Some((key, op, flags)) = self.control.pop_front() {
            return Some((self.header(key, op, flags, 0), Vec::new()));
        }
        let mut keys: Vec<Key> = self.conns.keys().copied().collect();
        keys.sort_unstable();
        if keys.is_empty() {
            return None;
        }
        let start = self.turn % keys.len();
        for i in 0..keys.len() {
            let key = keys[(start + i) % keys.len()];
            let conn = self.conns.get_mut(&key).expect("listed");
            let n = conn
                .to_guest
                .len()
                .min(conn.peer_credit() as usize)
                .min(room)
                .min(MAX_PAYLOAD);
            if n > 0 {
                let data: Vec<u8> = conn.to_guest.drain(..n).collect();
                conn.tx_cnt = conn.tx_cnt.wrapping_add(n as u32);
                self.turn = start + i + 1;
                return Some((self.header(key, op::RW, 0, n as u32), data));
            }
            if conn.host_eof && !conn.eof_told && conn.to_guest.is_empty() {
                conn.eof_told = true;
                return Some((self.header(key, op::SHUTDOWN, SHUTDOWN_SEND, 0), Vec::new()));
            }
        }
        None
    }

    fn header(&mut self, key: Key, op: u16, flags: u32, len: u32) -> Header {
        let fwd_cnt = match self.conns.get_mut(&key) {
            Some(c) => {
                c.fwd_cnt_told = c.fwd_cnt;
                c.fwd_cnt
            }
            None => 0,
        };
        Header {
            src_cid: key.0,
            dst_cid: self.guest_cid,
            src_port: key.1,
            dst_port: key.2,
            len,
            kind: TYPE_STREAM,
            op,
            flags,
            buf_alloc: BUF_ALLOC,
            fwd_cnt,
        }
    }
}

#[cfg(test)]
#[path = "muxer_tests.rs"]
mod tests;
