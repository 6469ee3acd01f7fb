//! A fast hasher for the CPU's internal maps, whose keys are guest
//! addresses and host page numbers. SipHash's protection against chosen
//! keys buys nothing here: a guest that made its own blocks collide would
//! only slow its own vCPU, and the block cache is bounded.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate hashing of whole words (the FxHash scheme).
#[derive(Default, Clone, Copy)]
pub(crate) struct AddrHasher(u64);

impl AddrHasher {
    #[inline(always)]
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for AddrHasher {
    #[inline(always)]
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline(always)]
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }

    #[inline(always)]
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
}

/// A map keyed by addresses.
pub(crate) type AddrMap<K, V> = HashMap<K, V, BuildHasherDefault<AddrHasher>>;
/// A set of addresses.
pub(crate) type AddrSet<K> = HashSet<K, BuildHasherDefault<AddrHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_pages_spread_over_the_table() {
        // The map picks buckets from the low bits and tags from the top 7:
        // consecutive page numbers must differ in both.
        let hash = |v: usize| {
            let mut h = AddrHasher::default();
            h.write_usize(v);
            h.finish()
        };
        let low: HashSet<u64> = (0..1024).map(|p| hash(p) & 1023).collect();
        let top: HashSet<u64> = (0..1024).map(|p| hash(p) >> 57).collect();
        assert!(low.len() > 600, "{} distinct low parts", low.len());
        assert!(top.len() > 100, "{} distinct tags", top.len());
    }
}
