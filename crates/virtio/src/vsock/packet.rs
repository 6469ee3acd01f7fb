//! The virtio-vsock packet header (virtio 1.2 §5.10.6) and its operations.

/// Size of `struct virtio_vsock_hdr`.
pub const HEADER_LEN: usize = 44;
/// The host's context ID.
pub const HOST_CID: u64 = 2;
/// VIRTIO_VSOCK_TYPE_STREAM.
pub const TYPE_STREAM: u16 = 1;

/// Packet operations.
pub mod op {
    /// Connection request.
    pub const REQUEST: u16 = 1;
    /// Connection accepted.
    pub const RESPONSE: u16 = 2;
    /// Connection refused or aborted.
    pub const RST: u16 = 3;
    /// The sender will not send and/or receive any more (flags say which).
    pub const SHUTDOWN: u16 = 4;
    /// Stream data.
    pub const RW: u16 = 5;
    /// The sender's buffer space changed.
    pub const CREDIT_UPDATE: u16 = 6;
    /// The sender wants a credit update.
    pub const CREDIT_REQUEST: u16 = 7;
}

/// SHUTDOWN flags: the sender will receive no more.
pub const SHUTDOWN_RCV: u32 = 1;
/// SHUTDOWN flags: the sender will send no more.
pub const SHUTDOWN_SEND: u32 = 2;

/// A packet header in host byte order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Source context ID.
    pub src_cid: u64,
    /// Destination context ID.
    pub dst_cid: u64,
    /// Source port.
    pub src_port: u32,
    /// Destination port.
    pub dst_port: u32,
    /// Payload length.
    pub len: u32,
    /// Socket type (only streams are supported).
    pub kind: u16,
    /// Operation.
    pub op: u16,
    /// Operation flags (SHUTDOWN).
    pub flags: u32,
    /// The sender's receive buffer size.
    pub buf_alloc: u32,
    /// Bytes the sender has consumed from its receive buffer so far.
    pub fwd_cnt: u32,
}

impl Header {
    /// Parses the first [`HEADER_LEN`] bytes of `b`.
    pub fn parse(b: &[u8]) -> Option<Header> {
        let b: &[u8; HEADER_LEN] = b.get(..HEADER_LEN)?.try_into().ok()?;
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        Some(Header {
            src_cid: u64_at(0),
            dst_cid: u64_at(8),
            src_port: u32_at(16),
            dst_port: u32_at(20),
            len: u32_at(24),
            kind: u16_at(28),
            op: u16_at(30),
            flags: u32_at(32),
            buf_alloc: u32_at(36),
            fwd_cnt: u32_at(40),
        })
    }

    /// The header's wire form.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&self.src_cid.to_le_bytes());
        b[8..16].copy_from_slice(&self.dst_cid.to_le_bytes());
        b[16..20].copy_from_slice(&self.src_port.to_le_bytes());
        b[20..24].copy_from_slice(&self.dst_port.to_le_bytes());
        b[24..28].copy_from_slice(&self.len.to_le_bytes());
        b[28..30].copy_from_slice(&self.kind.to_le_bytes());
        b[30..32].copy_from_slice(&self.op.to_le_bytes());
        b[32..36].copy_from_slice(&self.flags.to_le_bytes());
        b[36..40].copy_from_slice(&self.buf_alloc.to_le_bytes());
        b[40..44].copy_from_slice(&self.fwd_cnt.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = Header {
            src_cid: 3,
            dst_cid: 2,
            src_port: 1234,
            dst_port: 5678,
            len: 99,
            kind: TYPE_STREAM,
            op: op::RW,
            flags: 3,
            buf_alloc: 262_144,
            fwd_cnt: 0xdead_beef,
        };
        let b = h.to_bytes();
        assert_eq!(Header::parse(&b), Some(h));
        assert_eq!(b[16..20], 1234u32.to_le_bytes());
        assert_eq!(Header::parse(&b[..43]), None);
    }
}
