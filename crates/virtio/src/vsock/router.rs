//! Streams between VMs: what a vsock device asks of whoever carries its
//! guest's connections beyond the host (a phone's supervisor, which opens
//! them only where its policy says so).
//!
//! An outgoing stream is asked for with [`VsockRouter::connect`]; the
//! stream it returns reaches the other VM's device, which offers it to its
//! guest as a connection from this guest's CID and, once accepted, writes
//! `OK <port>\n` first — the same line a host program gets after
//! `CONNECT <port>`. Incoming streams arrive on [`VsockRouter::inbox`].

use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;

/// A stream the router opened for the guest.
pub enum Routed {
    /// Connected and accepted (a host program's socket): data flows.
    Established(UnixStream),
    /// Reaches another VM, which answers `OK <port>\n` once its guest
    /// accepts (the stream closes if it refuses).
    AwaitingPeer(UnixStream),
}

/// Another VM's stream for this guest.
pub struct PeerStream {
    /// The stream (its other end is in the other VM's device).
    pub stream: UnixStream,
    /// The connecting VM's CID (set by the router, not by that guest).
    pub src_cid: u64,
    /// The connecting guest's port.
    pub src_port: u32,
    /// The port on this guest it connects to.
    pub dst_port: u32,
}

/// Carries a guest's vsock streams beyond its own device.
pub trait VsockRouter: Send + Sync {
    /// The guest (port `src_port`) connects to port `dst_port` of CID
    /// `dst_cid` (2 for the host): the stream, or `None` to refuse (the
    /// guest gets a reset). May block briefly.
    fn connect(&self, dst_cid: u64, dst_port: u32, src_port: u32) -> Option<Routed>;
    /// A descriptor that polls readable when [`VsockRouter::receive`] has a
    /// stream.
    fn inbox(&self) -> RawFd;
    /// The next incoming stream, if one is waiting (never blocks).
    fn receive(&self) -> Option<PeerStream>;
}
