//! Guest-to-guest vsock streams, routed by the supervisor under the
//! phone's channel policy. A worker asks for every stream its guest opens
//! beyond itself ([`ConnectRequest`] on its router socket); the supervisor
//! looks the destination up by CID and, only when a `[[channel]]` lets the
//! asking VM reach that port of that VM, makes a socket pair and hands one
//! end to each worker — the asking one as its connection, the other through
//! its inbox as a connection from the asking VM's CID (which the asking
//! guest cannot choose). A VM opens at most [`CONNECT_RATE`] new streams a
//! second to another (bursts of [`CONNECT_BURST`]); the rest are refused.
//! Bytes then flow worker to worker; both vsock devices keep their own
//! flow control. Everything refused is logged in `STATE_DIR/phone.log`.
//!
//! The trust device's port on the host ([`trust::TRUST_PORT`]) is the
//! supervisor's own ([`crate::trusted`]). Other connections to host ports
//! (CID 2) are made by the supervisor too, to
//! `STATE_DIR/vms/NAME/vsock.sock_PORT` as with a single VM, so a worker
//! never connects to anything itself.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::protocol::{self, ConnectReply, ConnectRequest, Incoming, Received};
use crate::supervisor::{lock, Shared};

/// The host's vsock CID.
const HOST_CID: u64 = 2;
/// New streams one VM may open to another, per second, sustained...
pub const CONNECT_RATE: f64 = 50.0;
/// ...and at once after a quiet spell. Beyond that they are refused, so a
/// VM flooding another with connections costs the target little: a
/// trusted service keeps its CPU for the other VMs' requests.
pub const CONNECT_BURST: f64 = 100.0;

/// A token bucket per (from, to) pair of VMs, and what it refused.
#[derive(Default)]
pub(crate) struct ConnectLimits {
    buckets: Mutex<HashMap<(usize, usize), Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    /// Refused since the last log line, and when that was.
    refused: u64,
    logged: Option<Instant>,
}

impl ConnectLimits {
    /// Takes a token for a stream from VM `from` to VM `to`; `Err` with a
    /// log line to write (at most one a second) when there is none.
    fn take(&self, from: usize, to: usize) -> Result<(), Option<u64>> {
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        let b = buckets.entry((from, to)).or_insert(Bucket {
            tokens: CONNECT_BURST,
            at: now,
            refused: 0,
            logged: None,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.at).as_secs_f64() * CONNECT_RATE).min(CONNECT_BURST);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        b.refused += 1;
        if b.logged
            .is_none_or(|t| now.duration_since(t).as_secs() >= 1)
        {
            b.logged = Some(now);
            let n = std::mem::take(&mut b.refused);
            return Err(Some(n));
        }
        Err(None)
    }
}

/// Answers VM `i`'s (generation `g`) requests until its worker goes away.
pub(crate) fn serve(shared: &Arc<Shared>, i: usize, g: u64, router: OwnedFd) {
    loop {
        let request = match protocol::receive::<ConnectRequest>(router.as_fd(), false) {
            Ok(Received::Message(r, _)) => r,
            Ok(Received::Empty) => continue,
            Ok(Received::Closed) | Err(_) => return,
        };
        if !shared.is_current(i, g) {
            return;
        }
        let (reply, fd) = route(shared, i, g, &request);
        let sent = protocol::send(
            router.as_fd(),
            &reply,
            fd.as_ref().map(|f| f.as_fd()),
            false,
        );
        if sent.is_err() {
            return;
        }
    }
}

/// Decides one request: the reply and the stream's end for the asker.
fn route(
    shared: &Arc<Shared>,
    i: usize,
    g: u64,
    r: &ConnectRequest,
) -> (ConnectReply, Option<OwnedFd>) {
    let m = shared.manifest();
    let from = &m.vms[i];
    if r.dst_cid == HOST_CID && r.dst_port == trust::TRUST_PORT {
        return match shared.trust.connect(shared, i, g) {
            Some(fd) => (ConnectReply::Established, Some(fd)),
            None => (ConnectReply::Refused, None),
        };
    }
    if r.dst_cid == HOST_CID {
        let mut path = m.vsock_path(&from.name).into_os_string();
        path.push(format!("_{}", r.dst_port));
        return match UnixStream::connect(&path) {
            Ok(s) => (ConnectReply::Established, Some(OwnedFd::from(s))),
            Err(_) => (ConnectReply::Refused, None),
        };
    }
    let refuse = |why: String| {
        shared.log(&format!(
            "channel refused: {} (cid {}) port {} -> cid {} port {}: {why}",
            from.name, from.cid, r.src_port, r.dst_cid, r.dst_port
        ));
        (ConnectReply::Refused, None)
    };
    let Some(j) = m.vms.iter().position(|v| v.cid == r.dst_cid) else {
        return refuse("no VM has that CID".into());
    };
    let to = &m.vms[j];
    if !m.allows(&from.name, &to.name, r.dst_port) {
        return refuse(format!(
            "no [[channel]] from {} to {} port {}",
            from.name, to.name, r.dst_port
        ));
    }
    match shared.connect_limits.take(i, j) {
        Ok(()) => {}
        Err(Some(n)) => {
            return refuse(format!(
                "over {CONNECT_RATE} new streams a second to {} ({n} refused since the last line)",
                to.name
            ))
        }
        Err(None) => return (ConnectReply::Refused, None),
    }
    let inbox = lock(&shared.table).slots[j]
        .worker
        .as_ref()
        .map(|w| w.inbox.clone());
    let Some(inbox) = inbox else {
        return refuse(format!("{} is not running", to.name));
    };
    let (ours, theirs) = match protocol::stream_pair() {
        Ok(p) => p,
        Err(e) => return refuse(format!("cannot make a stream: {e}")),
    };
    let incoming = Incoming {
        src_cid: from.cid,
        src_port: r.src_port,
        dst_port: r.dst_port,
    };
    match protocol::send(inbox.as_fd(), &incoming, Some(theirs.as_fd()), true) {
        Ok(true) => {
            shared.log(&format!(
                "channel: {} port {} -> {} port {}",
                from.name, r.src_port, to.name, r.dst_port
            ));
            (ConnectReply::AwaitingPeer, Some(ours))
        }
        Ok(false) => refuse(format!("{} is not taking connections", to.name)),
        Err(e) => refuse(format!("{}: {e}", to.name)),
    }
}
