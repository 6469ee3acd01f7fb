//! Table-driven decoding.
//!
//! Every instruction module declares a `const ENCODINGS: &[Encoding]` table.
//! An entry is a 32-character bit pattern (spaces ignored): `0` and `1` must
//! match, any other character names a field bit and matches anything, e.g.
//! `"s 0 0 100010 h iiiiiiiiiiii nnnnn ddddd"` for ADD (immediate). When more
//! than one entry matches, the one with the most fixed bits wins; the
//! `no_ambiguous_encodings` test proves no two equally specific entries overlap.
//! Handlers reject unallocated sub-encodings themselves by raising
//! [`crate::Exit::Undefined`].

use std::sync::OnceLock;

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::insn::GROUPS;
use crate::jit::Shim;

/// A decoded instruction as stored in a cached block.
#[derive(Clone, Copy)]
pub(crate) struct Insn {
    /// The handler that executes it.
    pub exec: Exec,
    /// The raw 32-bit encoding (handlers extract their fields from it).
    pub raw: u32,
    /// Its address.
    pub pc: u64,
}

/// An instruction handler. Instructions that end a block (see
/// [`Encoding::ends_block`]) must set `cpu.pc` to the next PC themselves.
pub(crate) type Exec = fn(&mut Cpu, &mut dyn Bus, &Insn) -> Step;

/// One row of a decode table.
pub(crate) struct Encoding {
    pub mask: u32,
    pub value: u32,
    /// Mnemonic and form, e.g. "ADD (immediate)".
    pub name: &'static str,
    /// Encoding class, e.g. "dp-imm", used for coverage and differential tests.
    pub class: &'static str,
    pub exec: Exec,
    /// The handler with the C ABI, for compiled code (see `crate::jit`).
    pub shim: Shim,
    /// Whether the instruction may change the PC or the translation context,
    /// so that the block must end after it.
    pub ends_block: bool,
}

/// Parses a pattern into (mask, value) at compile time.
const fn parse_pattern(p: &str) -> (u32, u32) {
    let b = p.as_bytes();
    let mut mask = 0u32;
    let mut value = 0u32;
    let mut bits = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c == b' ' {
            continue;
        }
        assert!(bits < 32, "pattern longer than 32 bits");
        let bit = 1u32 << (31 - bits);
        bits += 1;
        if c == b'0' {
            mask |= bit;
        } else if c == b'1' {
            mask |= bit;
            value |= bit;
        }
    }
    assert!(bits == 32, "pattern shorter than 32 bits");
    (mask, value)
}

impl Encoding {
    /// A table row for an instruction that falls through to the next one
    /// (tables use the `enc!` macro, which makes the shim).
    pub const fn new(
        pattern: &str,
        name: &'static str,
        class: &'static str,
        exec: Exec,
        shim: Shim,
    ) -> Self {
        let (mask, value) = parse_pattern(pattern);
        Encoding {
            mask,
            value,
            name,
            class,
            exec,
            shim,
            ends_block: false,
        }
    }

    /// A table row for a branch or other block-ending instruction.
    pub const fn branch(
        pattern: &str,
        name: &'static str,
        class: &'static str,
        exec: Exec,
        shim: Shim,
    ) -> Self {
        let mut e = Self::new(pattern, name, class, exec, shim);
        e.ends_block = true;
        e
    }

    fn matches(&self, raw: u32) -> bool {
        raw & self.mask == self.value
    }
}

/// Public description of a decoded encoding, for tools and reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodingInfo {
    /// Mnemonic and form.
    pub name: &'static str,
    /// Encoding class.
    pub class: &'static str,
}

/// Bits [31:21] select a bucket; each bucket lists candidate rows, most specific first.
const BUCKET_SHIFT: u32 = 21;

struct Decoder {
    rows: Vec<&'static Encoding>,
    buckets: Vec<Vec<u16>>,
}

fn decoder() -> &'static Decoder {
    static DECODER: OnceLock<Decoder> = OnceLock::new();
    DECODER.get_or_init(|| {
        let rows: Vec<&'static Encoding> = GROUPS
            .iter()
            .flat_map(|g| g.iter())
            .flat_map(|t| t.iter())
            .collect();
        let mut buckets = vec![Vec::new(); 1 << (32 - BUCKET_SHIFT)];
        for (i, row) in rows.iter().enumerate() {
            let (bm, bv) = (row.mask >> BUCKET_SHIFT, row.value >> BUCKET_SHIFT);
            for (b, bucket) in buckets.iter_mut().enumerate() {
                if b as u32 & bm == bv {
                    bucket.push(i as u16);
                }
            }
        }
        for bucket in buckets.iter_mut() {
            bucket.sort_by_key(|&i| std::cmp::Reverse(rows[i as usize].mask.count_ones()));
        }
        Decoder { rows, buckets }
    })
}

/// The table row for `raw`, if any.
pub(crate) fn lookup(raw: u32) -> Option<&'static Encoding> {
    let d = decoder();
    d.buckets[(raw >> BUCKET_SHIFT) as usize]
        .iter()
        .map(|&i| d.rows[i as usize])
        .find(|row| row.matches(raw))
}

/// Names the encoding of `raw`, or `None` if the decoder does not know it.
pub fn decode(raw: u32) -> Option<EncodingInfo> {
    lookup(raw).map(|e| EncodingInfo {
        name: e.name,
        class: e.class,
    })
}

/// The handler for encodings no table knows.
pub(crate) fn undefined(cpu: &mut Cpu, _bus: &mut dyn Bus, insn: &Insn) -> Step {
    cpu.stop(Exit::Undefined(insn.raw))
}

/// [`undefined`] for compiled code.
pub(crate) unsafe extern "C" fn undefined_shim(
    cpu: *mut Cpu,
    ctx: *mut crate::jit::JitCtx<'_>,
    insn: *const Insn,
) -> u8 {
    // SAFETY: called only by compiled code, with valid pointers.
    unsafe { crate::jit::call(cpu, ctx, insn, undefined) }
}

/// A text report of the implemented encodings, grouped by class.
pub fn coverage_report() -> String {
    use std::collections::BTreeMap;
    let mut by_class: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for row in &decoder().rows {
        by_class.entry(row.class).or_default().push(row.name);
    }
    let mut out = String::new();
    let total: usize = by_class.values().map(Vec::len).sum();
    out.push_str(&format!(
        "{total} encodings in {} classes\n",
        by_class.len()
    ));
    for (class, names) in by_class {
        out.push_str(&format!("\n[{class}] {} encodings\n", names.len()));
        for n in names {
            out.push_str(&format!("  {n}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse() {
        let (m, v) = parse_pattern("1101 0100 000 iiiiiiiiiiiiiiii 000 01");
        assert_eq!(m, 0xffe0_001f);
        assert_eq!(v, 0xd400_0001);
    }

    #[test]
    fn coverage_report_lists_every_class() {
        let report = coverage_report();
        for class in [
            "dp-imm",
            "dp-reg",
            "branch",
            "system",
            "ldst",
            "ldst-excl",
            "atomic",
            "simd-move",
            "simd-ldst",
            "simd-int",
            "fp-scalar",
            "fp-vector",
            "fp-convert",
        ] {
            assert!(
                report.contains(&format!("[{class}]")),
                "{class} missing from:\n{report}"
            );
        }
        assert!(decode(0xd400_0001).is_some_and(|e| e.name == "SVC"));
        assert!(decode(0).is_none());
    }

    #[test]
    fn no_ambiguous_encodings() {
        let rows = &decoder().rows;
        let mut clashes = Vec::new();
        for (i, a) in rows.iter().enumerate() {
            for b in &rows[i + 1..] {
                let common = a.mask & b.mask;
                let overlap = a.value & common == b.value & common;
                if overlap && a.mask.count_ones() == b.mask.count_ones() {
                    clashes.push(format!("{} / {}", a.name, b.name));
                }
            }
        }
        assert!(
            clashes.is_empty(),
            "equally specific overlapping encodings: {clashes:#?}"
        );
    }
}
