//! The split virtqueue (virtio 1.2 §2.7), read and written in guest memory
//! with every guest-controlled value checked: descriptor indices, addresses
//! and lengths inside guest RAM, chains no longer than the queue (which also
//! catches loops), device-readable buffers before device-writable ones, no
//! indirect descriptors (not offered). A violation is a [`QueueError`]; the
//! transport then puts the device in NEEDS_RESET.

use crate::spec::{AVAIL_NO_INTERRUPT, DESC_INDIRECT, DESC_NEXT, DESC_WRITE};
use board::GuestRam;

/// Largest queue this implementation offers.
pub const MAX_QUEUE_SIZE: u16 = 256;
/// Largest total length of one chain's buffers (they describe guest memory,
/// which may be large: free page reports cover many MiB; copies are bounded
/// separately by their callers).
pub const MAX_CHAIN_BYTES: u64 = 1 << 32;

/// A guest mistake in a virtqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// A ring or descriptor lies (partly) outside guest RAM.
    OutOfMemory(u64),
    /// A descriptor index is not below the queue size.
    BadIndex(u16),
    /// The chain is longer than the queue (a loop, or plain garbage).
    ChainTooLong,
    /// A device-readable descriptor follows a device-writable one.
    WrongOrder,
    /// An indirect descriptor (the feature was not offered).
    Indirect,
    /// The chain's buffers add up to more than [`MAX_CHAIN_BYTES`].
    TooLarge,
    /// The driver made more buffers available than the queue holds.
    BadAvailIndex,
    /// The request is malformed for this device (too short, wrong direction).
    Malformed(&'static str),
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::OutOfMemory(a) => write!(f, "buffer outside guest memory at {a:#x}"),
            QueueError::BadIndex(i) => write!(f, "descriptor index {i} out of range"),
            QueueError::ChainTooLong => write!(f, "descriptor chain longer than the queue"),
            QueueError::WrongOrder => write!(f, "device-readable buffer after a writable one"),
            QueueError::Indirect => write!(f, "indirect descriptor (not negotiated)"),
            QueueError::TooLarge => write!(f, "descriptor chain too large"),
            QueueError::BadAvailIndex => write!(f, "avail index ran ahead of the queue"),
            QueueError::Malformed(why) => write!(f, "malformed request: {why}"),
        }
    }
}

/// One buffer of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// Guest physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
}

/// A descriptor chain taken from the avail ring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    /// Head descriptor index (returned in the used ring).
    pub head: u16,
    /// Device-readable buffers, in order.
    pub readable: Vec<Buffer>,
    /// Device-writable buffers, in order.
    pub writable: Vec<Buffer>,
}

impl Chain {
    /// Total bytes the device may write.
    pub fn writable_len(&self) -> u64 {
        self.writable.iter().map(|b| b.len as u64).sum()
    }

    /// Total bytes the device may read.
    pub fn readable_len(&self) -> u64 {
        self.readable.iter().map(|b| b.len as u64).sum()
    }

    /// Copies the readable buffers' bytes (at most `limit`).
    pub fn read_all(&self, ram: &GuestRam, limit: usize) -> Result<Vec<u8>, QueueError> {
        let mut out = Vec::new();
        for b in &self.readable {
            let n = (b.len as usize).min(limit - out.len());
            let start = out.len();
            out.resize(start + n, 0);
            if !ram.read(b.addr, &mut out[start..]) {
                return Err(QueueError::OutOfMemory(b.addr));
            }
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// Writes `data` across the writable buffers, from byte `offset` of the
    /// writable space; returns how many bytes fitted.
    pub fn write_at(
        &self,
        ram: &GuestRam,
        mut offset: u64,
        mut data: &[u8],
    ) -> Result<usize, QueueError> {
        let mut written = 0;
        for b in &self.writable {
            if data.is_empty() {
                break;
            }
            if offset >= b.len as u64 {
                offset -= b.len as u64;
                continue;
            }
            let room = (b.len as u64 - offset) as usize;
            let n = room.min(data.len());
            if !ram.write(b.addr + offset, &data[..n]) {
                return Err(QueueError::OutOfMemory(b.addr));
            }
            offset = 0;
            data = &data[n..];
            written += n;
        }
        Ok(written)
    }
}

/// Driver-set queue configuration and device-side progress: plain data,
/// saved as it is (a restored queue is validated before use, like any the
/// driver configures).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Queue {
    /// Queue size chosen by the driver.
    pub size: u16,
    /// Whether the driver has enabled the queue.
    pub ready: bool,
    /// Descriptor table address.
    pub desc: u64,
    /// Avail (driver) ring address.
    pub avail: u64,
    /// Used (device) ring address.
    pub used: u64,
    /// Next avail ring slot the device will read.
    next_avail: u16,
    /// Next used ring slot the device will write.
    next_used: u16,
}

fn read_u16(ram: &GuestRam, addr: u64) -> Result<u16, QueueError> {
    let mut b = [0u8; 2];
    if ram.read(addr, &mut b) {
        Ok(u16::from_le_bytes(b))
    } else {
        Err(QueueError::OutOfMemory(addr))
    }
}

impl Queue {
    /// Whether the configuration is usable: a power-of-two size within
    /// limits and every ring inside guest RAM.
    pub fn validate(&self, ram: &GuestRam) -> Result<(), QueueError> {
        let n = self.size as u64;
        if n == 0 || n > MAX_QUEUE_SIZE as u64 || !n.is_power_of_two() {
            return Err(QueueError::BadIndex(self.size));
        }
        for (addr, len) in [
            (self.desc, 16 * n),
            (self.avail, 6 + 2 * n),
            (self.used, 6 + 8 * n),
        ] {
            let end = addr.checked_add(len).ok_or(QueueError::OutOfMemory(addr))?;
            if ram.host_ptr(addr).is_none() || ram.host_ptr(end - 1).is_none() {
                return Err(QueueError::OutOfMemory(addr));
            }
        }
        Ok(())
    }

    /// Forgets device-side progress (device reset).
    pub fn reset(&mut self) {
        *self = Queue::default();
    }

    /// Takes the next available chain, if any.
    pub fn pop(&mut self, ram: &GuestRam) -> Result<Option<Chain>, QueueError> {
        let avail_idx = read_u16(ram, self.avail + 2)?;
        let pending = avail_idx.wrapping_sub(self.next_avail);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.size {
            return Err(QueueError::BadAvailIndex);
        }
        // The driver fills the ring entry and descriptors, then (after a
        // write barrier) publishes them by bumping idx (virtio 1.2 §2.7.13:
        // "the driver MUST perform a suitable memory barrier before the idx
        // update"). The device's side of that pairing: read idx, then an
        // acquire barrier before the entry and descriptors, or a weakly
        // ordered host (an ARM host, parallel vCPUs) may see stale ones.
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        let slot = self.next_avail % self.size;
        let head = read_u16(ram, self.avail + 4 + 2 * slot as u64)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        self.read_chain(ram, head).map(Some)
    }

    /// Puts back the chain [`Queue::pop`] just returned, for a device that
    /// found it had nothing to put in it after all.
    pub fn undo_pop(&mut self) {
        self.next_avail = self.next_avail.wrapping_sub(1);
    }

    fn read_chain(&self, ram: &GuestRam, head: u16) -> Result<Chain, QueueError> {
        let mut chain = Chain {
            head,
            ..Default::default()
        };
        let mut index = head;
        let mut total = 0u64;
        for _ in 0..self.size {
            if index >= self.size {
                return Err(QueueError::BadIndex(index));
            }
            let mut d = [0u8; 16];
            let at = self.desc + 16 * index as u64;
            if !ram.read(at, &mut d) {
                return Err(QueueError::OutOfMemory(at));
            }
            let addr = u64::from_le_bytes(d[0..8].try_into().expect("8 bytes"));
            let len = u32::from_le_bytes(d[8..12].try_into().expect("4 bytes"));
            let flags = u16::from_le_bytes(d[12..14].try_into().expect("2 bytes"));
            let next = u16::from_le_bytes(d[14..16].try_into().expect("2 bytes"));
            if flags & DESC_INDIRECT != 0 {
                return Err(QueueError::Indirect);
            }
            let end = addr
                .checked_add(len as u64)
                .ok_or(QueueError::OutOfMemory(addr))?;
            if len > 0 && (ram.host_ptr(addr).is_none() || ram.host_ptr(end - 1).is_none()) {
                return Err(QueueError::OutOfMemory(addr));
            }
            total += len as u64;
            if total > MAX_CHAIN_BYTES {
                return Err(QueueError::TooLarge);
            }
            let buffer = Buffer { addr, len };
            if flags & DESC_WRITE != 0 {
                chain.writable.push(buffer);
            } else if chain.writable.is_empty() {
                chain.readable.push(buffer);
            } else {
                return Err(QueueError::WrongOrder);
            }
            if flags & DESC_NEXT == 0 {
                return Ok(chain);
            }
            index = next;
        }
        Err(QueueError::ChainTooLong)
    }

    /// Returns chain `head` to the driver with `len` bytes written.
    pub fn push_used(&mut self, ram: &GuestRam, head: u16, len: u32) -> Result<(), QueueError> {
        let slot = self.next_used % self.size;
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&(head as u32).to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        let at = self.used + 4 + 8 * slot as u64;
        if !ram.write(at, &elem) {
            return Err(QueueError::OutOfMemory(at));
        }
        self.next_used = self.next_used.wrapping_add(1);
        // The used element before the index that publishes it (§2.7.8).
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        if !ram.write(self.used + 2, &self.next_used.to_le_bytes()) {
            return Err(QueueError::OutOfMemory(self.used));
        }
        Ok(())
    }

    /// Whether the driver wants an interrupt for used buffers.
    pub fn wants_interrupt(&self, ram: &GuestRam) -> bool {
        // A full barrier between publishing the used index and reading the
        // driver's suppression flag (§2.7.10): the driver clears the flag,
        // then re-checks the used index; without the fence each side could
        // read the other's old value and the interrupt would be lost.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        read_u16(ram, self.avail).map_or(true, |f| f & AVAIL_NO_INTERRUPT == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 0x4000_0000;

    fn desc(ram: &GuestRam, q: &Queue, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        assert!(ram.write(q.desc + 16 * i as u64, &d));
    }

    fn offer(ram: &GuestRam, q: &Queue, heads: &[u16]) {
        for (k, h) in heads.iter().enumerate() {
            ram.write(q.avail + 4 + 2 * k as u64, &h.to_le_bytes());
        }
        ram.write(q.avail + 2, &(heads.len() as u16).to_le_bytes());
    }

    fn setup() -> (GuestRam, Queue) {
        let ram = GuestRam::new(RAM, 1 << 20).unwrap();
        let q = Queue {
            size: 8,
            ready: true,
            desc: RAM,
            avail: RAM + 0x1000,
            used: RAM + 0x2000,
            ..Default::default()
        };
        q.validate(&ram).unwrap();
        (ram, q)
    }

    #[test]
    fn chains_are_read_and_returned() {
        let (ram, mut q) = setup();
        desc(&ram, &q, 0, RAM + 0x8000, 16, DESC_NEXT, 3);
        desc(&ram, &q, 3, RAM + 0x9000, 512, DESC_NEXT | DESC_WRITE, 5);
        desc(&ram, &q, 5, RAM + 0xa000, 1, DESC_WRITE, 0);
        offer(&ram, &q, &[0]);
        let c = q.pop(&ram).unwrap().unwrap();
        assert_eq!(c.head, 0);
        assert_eq!(c.readable.len(), 1);
        assert_eq!(c.writable.len(), 2);
        assert_eq!(c.writable_len(), 513);
        assert_eq!(c.write_at(&ram, 510, &[1, 2, 3, 4]).unwrap(), 3);
        assert!(q.pop(&ram).unwrap().is_none());
        q.push_used(&ram, 0, 513).unwrap();
        let mut idx = [0u8; 2];
        ram.read(q.used + 2, &mut idx);
        assert_eq!(u16::from_le_bytes(idx), 1);
    }

    #[test]
    fn hostile_chains_are_rejected() {
        let (ram, mut q) = setup();
        // A loop.
        desc(&ram, &q, 0, RAM + 0x8000, 16, DESC_NEXT, 1);
        desc(&ram, &q, 1, RAM + 0x8000, 16, DESC_NEXT, 0);
        offer(&ram, &q, &[0]);
        assert_eq!(q.pop(&ram), Err(QueueError::ChainTooLong));
        // Outside memory, index out of range, wrong order, indirect.
        let cases: [(u64, u32, u16, u16, QueueError); 4] = [
            (
                RAM + (1 << 20) - 8,
                16,
                0,
                0,
                QueueError::OutOfMemory(RAM + (1 << 20) - 8),
            ),
            (RAM + 0x8000, 16, DESC_NEXT, 99, QueueError::BadIndex(99)),
            (RAM + 0x8000, 16, DESC_INDIRECT, 0, QueueError::Indirect),
            (
                u64::MAX - 4,
                16,
                0,
                0,
                QueueError::OutOfMemory(u64::MAX - 4),
            ),
        ];
        for (k, (addr, len, flags, next, err)) in cases.into_iter().enumerate() {
            let (ram, mut q) = setup();
            desc(&ram, &q, 2, addr, len, flags, next);
            offer(&ram, &q, &[2]);
            assert_eq!(q.pop(&ram), Err(err), "case {k}");
        }
        let (ram, mut q) = setup();
        desc(&ram, &q, 0, RAM + 0x8000, 16, DESC_NEXT | DESC_WRITE, 1);
        desc(&ram, &q, 1, RAM + 0x9000, 16, 0, 0);
        offer(&ram, &q, &[0]);
        assert_eq!(q.pop(&ram), Err(QueueError::WrongOrder));
        let (ram, mut q) = setup();
        ram.write(q.avail + 2, &100u16.to_le_bytes());
        assert_eq!(q.pop(&ram), Err(QueueError::BadAvailIndex));
        // Rings outside memory or a bad size fail validation.
        let (ram, mut q) = setup();
        q.size = 3;
        assert!(q.validate(&ram).is_err());
        q.size = 8;
        q.used = RAM + (1 << 20) - 8;
        assert!(q.validate(&ram).is_err());
    }

    #[test]
    fn random_descriptors_never_panic() {
        let (ram, mut q) = setup();
        let mut x = 0x1234_5678_9abc_def1u64;
        for round in 0..2000 {
            for i in 0..8u16 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let addr = if x & 1 == 0 {
                    RAM + (x >> 40) % (1 << 20)
                } else {
                    x
                };
                desc(
                    &ram,
                    &q,
                    i,
                    addr,
                    (x >> 20) as u32 % 70000,
                    (x >> 8) as u16 & 7,
                    (x >> 50) as u16 % 10,
                );
            }
            offer(&ram, &q, &[(x % 10) as u16]);
            if let Ok(Some(c)) = q.pop(&ram) {
                let _ = c.read_all(&ram, 1 << 16);
                let _ = c.write_at(&ram, round, &[0xaa; 100]);
            }
            q.reset();
            q.size = 8;
            q.desc = RAM;
            q.avail = RAM + 0x1000;
            q.used = RAM + 0x2000;
            ram.write(q.avail + 2, &0u16.to_le_bytes());
        }
    }
}
