//! The supervisor↔worker protocol: typed messages (serde, postcard) over
//! `SOCK_SEQPACKET` socket pairs, one message per packet, file descriptors
//! passed alongside where a stream changes hands.
//!
//! A worker is given three sockets, always at the same descriptor numbers:
//! * [`CONTROL_FD`]: commands from the supervisor ([`ToWorker`]) and the
//!   worker's console output, state and reports ([`FromWorker`]);
//! * [`ROUTER_FD`]: the worker's vsock connection requests
//!   ([`ConnectRequest`]), answered with a [`ConnectReply`] and the stream;
//! * [`INBOX_FD`]: streams from other VMs ([`Incoming`] and the stream).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The worker's end of its control socket.
pub const CONTROL_FD: RawFd = 3;
/// The worker's end of its vsock router socket.
pub const ROUTER_FD: RawFd = 4;
/// The worker's end of its vsock inbox socket.
pub const INBOX_FD: RawFd = 5;
/// Largest message (console output is sent in smaller pieces).
pub const MAX_MESSAGE: usize = 64 << 10;

/// What the supervisor tells a worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Stop the vCPUs and device I/O at a consistent point.
    Pause,
    /// Go on after a pause.
    Resume,
    /// Set the balloon target in bytes.
    SetBalloon(u64),
    /// Limit each vCPU to this percent of a host core (None: no limit).
    SetCpuQuota(Option<u32>),
    /// Typed console input for the guest's serial port.
    Input(Vec<u8>),
    /// Answer with a [`FromWorker::Report`].
    Report,
    /// Write the paused VM's RAM into the file that comes with this
    /// message (already its size, all zeros) and answer
    /// [`FromWorker::Snapshot`] with the rest of its state.
    Snapshot,
    /// Migrate the VM away over the stream socket that comes with this
    /// message, aiming at this downtime in milliseconds
    /// ([`crate::migration::outgoing`]).
    Migrate(u32),
    /// Give up the migration under way (the VM runs on here).
    CancelMigration,
    /// The first message to a worker started `--incoming`: the VM's state,
    /// with a memfd holding its RAM.
    Incoming(Vec<u8>),
}

/// A worker's balloon, as its guest reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalloonInfo {
    /// Requested balloon size in bytes.
    pub target: u64,
    /// Bytes the guest has put in the balloon.
    pub actual: u64,
    /// The guest's free memory in bytes (its latest statistics), if known.
    pub free: Option<u64>,
    /// The memory the guest could make free (free plus reclaimable
    /// caches; its latest statistics), if known.
    pub available: Option<u64>,
    /// The guest's total memory in bytes (its latest statistics), if known.
    pub total: Option<u64>,
}

/// A worker's answer to [`ToWorker::Report`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Whether the VM is paused.
    pub paused: bool,
    /// Guest RAM in bytes.
    pub mem_bytes: u64,
    /// The balloon, if the VM has one.
    pub balloon: Option<BalloonInfo>,
    /// The vCPU quota in percent, if limited.
    pub cpu_quota: Option<u32>,
    /// Instructions the guest retired.
    pub instructions: u64,
}

/// What a worker tells the supervisor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromWorker {
    /// A trusted VM's boot measurement, sent before its guest's first
    /// instruction (see [`crate::trusted`]).
    Measured([u8; 32]),
    /// The VM is built and sandboxed; the guest is starting.
    Started,
    /// Serial console output.
    Console(Vec<u8>),
    /// The VM's state.
    Report(Report),
    /// A command could not be carried out.
    Error(String),
    /// A snapshot's state (`vmm::VmState` bytes) and the bytes of RAM
    /// data written.
    Snapshot {
        /// The VM's state but its RAM.
        state: Vec<u8>,
        /// RAM bytes written (nonzero runs).
        memory_bytes: u64,
    },
}

/// A guest's vsock connection, asked of the supervisor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectRequest {
    /// The CID it connects to (2: the host).
    pub dst_cid: u64,
    /// The port there.
    pub dst_port: u32,
    /// The guest's own port.
    pub src_port: u32,
}

/// The supervisor's answer; a stream comes with the last two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectReply {
    /// Not allowed, or nobody there.
    Refused,
    /// A host program's stream: connected.
    Established,
    /// Another VM's stream: it answers `OK <port>` once its guest accepts.
    AwaitingPeer,
}

/// A stream from another VM, passed to the VM it connects to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incoming {
    /// The connecting VM's CID.
    pub src_cid: u64,
    /// The connecting guest's port.
    pub src_port: u32,
    /// The port on this VM.
    pub dst_port: u32,
}

/// A new connected pair of `SOCK_SEQPACKET` sockets (close-on-exec).
pub fn seqpacket_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(std::io::Error::from)
}

/// A new connected pair of stream sockets (close-on-exec): a VM-to-VM
/// vsock stream's two ends.
pub fn stream_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(std::io::Error::from)
}

/// Sends `message` (and `fd`, if any) as one packet. With `nonblocking`,
/// a full socket drops the message (`Ok(false)`) instead of waiting.
pub fn send<T: Serialize>(
    socket: BorrowedFd<'_>,
    message: &T,
    fd: Option<BorrowedFd<'_>>,
    nonblocking: bool,
) -> std::io::Result<bool> {
    let bytes = postcard::to_stdvec(message).map_err(std::io::Error::other)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(std::io::Error::other("message too large"));
    }
    let fds = fd.map(|f| [f.as_raw_fd()]);
    let cmsgs: Vec<ControlMessage<'_>> = fds.iter().map(|f| ControlMessage::ScmRights(f)).collect();
    let flags = if nonblocking {
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL
    } else {
        MsgFlags::MSG_NOSIGNAL
    };
    loop {
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &cmsgs,
            flags,
            None,
        ) {
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) if nonblocking => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
}

/// What [`receive`] got.
pub enum Received<T> {
    /// A message and the descriptor that came with it, if any.
    Message(T, Option<OwnedFd>),
    /// The other end closed.
    Closed,
    /// Nothing waiting (non-blocking only).
    Empty,
}

/// Receives one packet: blocking, or with `nonblocking` returning
/// [`Received::Empty`] when none waits. A packet that does not decode is an
/// error (the peer is not speaking the protocol).
pub fn receive<T: DeserializeOwned>(
    socket: BorrowedFd<'_>,
    nonblocking: bool,
) -> std::io::Result<Received<T>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let flags = if nonblocking {
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC
    } else {
        MsgFlags::MSG_CMSG_CLOEXEC
    };
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), flags) {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) if nonblocking => return Ok(Received::Empty),
            Err(e) => return Err(e.into()),
        };
        let mut fd = None;
        for c in msg.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for raw in fds {
                    // SAFETY: the kernel just gave us this descriptor.
                    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                    if fd.is_none() {
                        fd = Some(owned);
                    }
                }
            }
        }
        let n = msg.bytes;
        if n == 0 {
            return Ok(Received::Closed);
        }
        let message = postcard::from_bytes(&buf[..n]).map_err(std::io::Error::other)?;
        return Ok(Received::Message(message, fd));
    }
}
