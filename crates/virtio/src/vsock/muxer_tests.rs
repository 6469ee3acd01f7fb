//! The muxer's protocol and flow control, against real unix sockets.

use super::*;
use std::os::unix::net::UnixListener;

const CID: u64 = 3;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pv-vsock-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A packet from the guest's port `gport` to host port `hport`.
fn guest(op: u16, hport: u32, gport: u32, len: u32, buf_alloc: u32, fwd_cnt: u32) -> Header {
    Header {
        src_cid: CID,
        dst_cid: HOST_CID,
        src_port: gport,
        dst_port: hport,
        len,
        kind: TYPE_STREAM,
        op,
        flags: 0,
        buf_alloc,
        fwd_cnt,
    }
}

fn next(m: &mut Muxer) -> (Header, Vec<u8>) {
    m.next_packet(1 << 20).expect("a packet for the guest")
}

#[test]
fn guest_connects_to_a_missing_listener_and_is_reset() {
    let d = dir("missing");
    let mut m = Muxer::new(CID, &d.join("v.sock"));
    m.from_guest(&guest(op::REQUEST, 6000, 1234, 0, 4096, 0), &[]);
    let (h, _) = next(&mut m);
    assert_eq!(
        (h.op, h.src_port, h.dst_port, h.dst_cid),
        (op::RST, 6000, 1234, CID)
    );
    assert_eq!(m.streams(), 0);
}

#[test]
fn guest_stream_to_host_listener_with_credit() {
    let d = dir("g2h");
    let uds = d.join("v.sock");
    let listener = UnixListener::bind(d.join("v.sock_6000")).unwrap();
    let mut m = Muxer::new(CID, &uds);
    m.from_guest(&guest(op::REQUEST, 6000, 1234, 0, 16, 0), &[]);
    let (h, _) = next(&mut m);
    assert_eq!(h.op, op::RESPONSE);
    assert_eq!(h.buf_alloc, BUF_ALLOC);
    let (mut host, _) = listener.accept().unwrap();
    // Guest → host.
    m.from_guest(&guest(op::RW, 6000, 1234, 5, 16, 0), b"hello");
    let mut buf = [0u8; 5];
    host.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    // Host → guest, within the guest's 16-byte buffer.
    host.write_all(&[7u8; 40]).unwrap();
    let key = (HOST_CID, 6000, 1234);
    std::thread::sleep(Duration::from_millis(20));
    m.ready(Token::Conn(key), true, false);
    let (h, data) = next(&mut m);
    assert_eq!((h.op, data.len(), h.fwd_cnt), (op::RW, 16, 5));
    assert!(!m.has_packet(), "no credit left");
    m.ready(Token::Conn(key), true, false);
    assert!(!m.has_packet(), "nothing read beyond the credit");
    // The guest consumed 16 bytes: 16 more may come.
    m.from_guest(&guest(op::CREDIT_UPDATE, 6000, 1234, 0, 16, 16), &[]);
    m.ready(Token::Conn(key), true, false);
    let (_, data) = next(&mut m);
    assert_eq!(data.len(), 16);
    // The host closes: the rest, then SHUTDOWN(SEND).
    drop(host);
    m.from_guest(&guest(op::CREDIT_UPDATE, 6000, 1234, 0, 64, 32), &[]);
    m.ready(Token::Conn(key), true, false);
    m.ready(Token::Conn(key), true, false);
    let (_, data) = next(&mut m);
    assert_eq!(data.len(), 8);
    m.ready(Token::Conn(key), true, false);
    let (h, _) = next(&mut m);
    assert_eq!((h.op, h.flags), (op::SHUTDOWN, SHUTDOWN_SEND));
    // The guest closes: the stream is reset and forgotten.
    let mut sd = guest(op::SHUTDOWN, 6000, 1234, 0, 64, 40);
    sd.flags = SHUTDOWN_SEND | SHUTDOWN_RCV;
    m.from_guest(&sd, &[]);
    let (h, _) = next(&mut m);
    assert_eq!(h.op, op::RST);
    assert_eq!(m.streams(), 0);
}

#[test]
fn credit_overrun_resets_the_stream() {
    let d = dir("overrun");
    let _listener = UnixListener::bind(d.join("v.sock_7")).unwrap();
    let mut m = Muxer::new(CID, &d.join("v.sock"));
    m.from_guest(&guest(op::REQUEST, 7, 99, 0, 4096, 0), &[]);
    assert_eq!(next(&mut m).0.op, op::RESPONSE);
    // Nobody reads on the host: the socket buffer fills, then our buffer.
    let chunk = vec![0u8; 60 << 10];
    let mut sent = 0u64;
    let mut reset = false;
    for _ in 0..200 {
        m.from_guest(&guest(op::RW, 7, 99, chunk.len() as u32, 4096, 0), &chunk);
        sent += chunk.len() as u64;
        if m.streams() == 0 {
            reset = true;
            break;
        }
    }
    assert!(reset, "a guest ignoring its credit is reset");
    assert!(sent > BUF_ALLOC as u64);
    let mut last = None;
    while let Some((h, _)) = m.next_packet(4096) {
        last = Some(h.op);
    }
    assert_eq!(last, Some(op::RST));
}

#[test]
fn host_program_connects_with_a_handshake() {
    let d = dir("h2g");
    let mut m = Muxer::new(CID, &d.join("v.sock"));
    let (mut client, server) = UnixStream::pair().unwrap();
    m.host_connects(server);
    client.write_all(b"CONNECT 5000\nearly data").unwrap();
    m.ready(Token::Pending(0), true, false);
    let (h, _) = next(&mut m);
    assert_eq!(
        (h.op, h.dst_port, h.src_port),
        (op::REQUEST, 5000, FIRST_HOST_PORT)
    );
    let key = (HOST_CID, FIRST_HOST_PORT, 5000);
    m.from_guest(&guest(op::RESPONSE, FIRST_HOST_PORT, 5000, 0, 4096, 0), &[]);
    let mut line = [0u8; 14];
    client.read_exact(&mut line).unwrap();
    assert_eq!(&line, format!("OK {FIRST_HOST_PORT}\n").as_bytes());
    // Bytes after the CONNECT line are stream data.
    m.ready(Token::Conn(key), true, false);
    let (h, data) = next(&mut m);
    assert_eq!((h.op, data.as_slice()), (op::RW, &b"early data"[..]));
    // The OK line does not count as guest data.
    m.from_guest(&guest(op::RW, FIRST_HOST_PORT, 5000, 3, 4096, 10), b"abc");
    m.from_guest(
        &guest(op::CREDIT_REQUEST, FIRST_HOST_PORT, 5000, 0, 4096, 10),
        &[],
    );
    let (h, _) = next(&mut m);
    assert_eq!((h.op, h.fwd_cnt), (op::CREDIT_UPDATE, 3));
    // A guest RST closes the host's stream.
    m.from_guest(&guest(op::RST, FIRST_HOST_PORT, 5000, 0, 0, 0), &[]);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"abc");
    assert_eq!(m.streams(), 0);
}

#[test]
fn bad_handshakes_and_strangers_are_refused() {
    let d = dir("bad");
    let mut m = Muxer::new(CID, &d.join("v.sock"));
    let (mut client, server) = UnixStream::pair().unwrap();
    m.host_connects(server);
    client.write_all(b"HELLO\n").unwrap();
    m.ready(Token::Pending(0), true, false);
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("ERROR"), "{answer}");
    assert!(!m.has_packet());
    // Packets for unknown streams, other CIDs or other socket types get RST.
    m.from_guest(&guest(op::RW, 1, 2, 0, 0, 0), &[]);
    let mut other = guest(op::REQUEST, 1, 2, 0, 0, 0);
    other.dst_cid = 7;
    m.from_guest(&other, &[]);
    let mut dgram = guest(op::REQUEST, 1, 2, 0, 0, 0);
    dgram.kind = 2;
    m.from_guest(&dgram, &[]);
    for _ in 0..3 {
        assert_eq!(next(&mut m).0.op, op::RST);
    }
    // ... but an RST is never answered.
    m.from_guest(&guest(op::RST, 1, 2, 0, 0, 0), &[]);
    assert!(!m.has_packet());
}

/// A router that hands out one end of a socket pair for CID 7 and refuses
/// everything else.
struct PairRouter {
    far: std::sync::Mutex<Option<UnixStream>>,
}

impl VsockRouter for PairRouter {
    fn connect(&self, dst_cid: u64, _dst_port: u32, _src_port: u32) -> Option<Routed> {
        if dst_cid != 7 {
            return None;
        }
        let (near, far) = UnixStream::pair().unwrap();
        *self.far.lock().unwrap() = Some(far);
        Some(Routed::AwaitingPeer(near))
    }
    fn inbox(&self) -> std::os::fd::RawFd {
        -1
    }
    fn receive(&self) -> Option<PeerStream> {
        None
    }
}

#[test]
fn streams_to_other_vms_go_through_the_router_and_wait_for_the_peer() {
    let d = dir("router");
    let router = Arc::new(PairRouter {
        far: Default::default(),
    });
    let mut m = Muxer::with_router(CID, &d.join("v.sock"), Some(router.clone()));
    let to = |cid: u64, port: u32| {
        let mut h = guest(op::REQUEST, port, 1234, 0, 4096, 0);
        h.dst_cid = cid;
        h
    };
    // Refused by the router: a reset from that CID.
    m.from_guest(&to(8, 5000), &[]);
    let (h, _) = next(&mut m);
    assert_eq!((h.op, h.src_cid, h.src_port), (op::RST, 8, 5000));
    // Its own CID is never routed.
    m.from_guest(&to(CID, 5000), &[]);
    assert_eq!(next(&mut m).0.op, op::RST);
    // Accepted by the router: no answer until the peer says OK.
    m.from_guest(&to(7, 5000), &[]);
    assert!(!m.has_packet());
    let key = (7, 5000, 1234);
    let mut far = router.far.lock().unwrap().take().unwrap();
    far.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    far.write_all(b"OK 5000\nhi").unwrap();
    m.ready(Token::Conn(key), true, false);
    let (h, _) = next(&mut m);
    assert_eq!(
        (h.op, h.src_cid, h.src_port, h.dst_port),
        (op::RESPONSE, 7, 5000, 1234)
    );
    // Then data flows, attributed to the peer's CID.
    let mut rw = to(7, 5000);
    rw.op = op::RW;
    rw.len = 3;
    m.from_guest(&rw, b"abc");
    let mut got = [0u8; 3];
    far.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"abc");
    m.ready(Token::Conn(key), true, false);
    let (h, data) = next(&mut m);
    assert_eq!((h.op, h.src_cid, data.as_slice()), (op::RW, 7, &b"hi"[..]));
    // A peer that closes before OK fails the connect.
    m.from_guest(&to(7, 6000), &[]);
    drop(router.far.lock().unwrap().take());
    m.ready(Token::Conn((7, 6000, 1234)), true, false);
    let (h, _) = next(&mut m);
    assert_eq!((h.op, h.src_port), (op::RST, 6000));
}

#[test]
fn a_peer_stream_is_offered_from_the_peers_cid() {
    let d = dir("peer-in");
    let router = Arc::new(PairRouter {
        far: Default::default(),
    });
    let mut m = Muxer::with_router(CID, &d.join("v.sock"), Some(router));
    let (near, mut far) = UnixStream::pair().unwrap();
    far.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    m.peer_connects(PeerStream {
        stream: near,
        src_cid: 9,
        src_port: 777,
        dst_port: 5000,
    });
    let (h, _) = next(&mut m);
    assert_eq!(
        (h.op, h.src_cid, h.src_port, h.dst_port),
        (op::REQUEST, 9, 777, 5000)
    );
    // The guest accepts: the peer reads OK.
    let mut resp = guest(op::RESPONSE, 777, 5000, 0, 4096, 0);
    resp.dst_cid = 9;
    m.from_guest(&resp, &[]);
    let mut line = [0u8; 7];
    far.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"OK 777\n");
    // A peer claiming the host's CID or the guest's own is dropped.
    for cid in [HOST_CID, CID] {
        let (near, _far) = UnixStream::pair().unwrap();
        m.peer_connects(PeerStream {
            stream: near,
            src_cid: cid,
            src_port: 1,
            dst_port: 5000,
        });
        assert!(!m.has_packet());
    }
}
