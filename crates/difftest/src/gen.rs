//! Random valid encodings per class, from templates of our own (independent of
//! the CPU's decode table, so a missing encoding shows up as a mismatch), and
//! random initial states biased towards interesting values.

use crate::protocol::*;

/// A small fast PRNG (xorshift64*), seedable for reproducible runs.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// How a template's initial state must be prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// Any register values.
    Plain,
    /// Rn (bits 9:5) is a base address in the scratch region; Rm (20:16) a small index if `index`.
    Mem { index: bool },
    /// PC-relative immediate branch: the immediate is limited so the target stays in the code page.
    BranchImm,
    /// Branch to the register in bits 9:5 (default X30 for RET), set to a code page address.
    BranchReg,
    /// A load-exclusive followed by a store-exclusive to the same address.
    ExclusivePair,
    /// PC-relative load: the immediate is usually limited to the code page.
    Literal,
}

/// One template: a pattern (`0`/`1` fixed, anything else random), its setup,
/// and patterns of encodings it must not produce (outside the class or the core).
pub struct Template {
    /// The bit pattern.
    pub pattern: &'static str,
    /// How to prepare the state.
    pub setup: Setup,
    /// Encodings to draw again.
    pub reject: &'static [&'static str],
}

const fn t(pattern: &'static str, setup: Setup) -> Template {
    Template {
        pattern,
        setup,
        reject: &[],
    }
}

const fn tr(pattern: &'static str, setup: Setup, reject: &'static [&'static str]) -> Template {
    Template {
        pattern,
        setup,
        reject,
    }
}

/// FP16 (type = 11) forms of the scalar FP encodings: the QEMU model has FEAT_FP16, our core does not.
const NOT_FP16: &[&str] = &["xxxxxxxx 11 xxxxxxxxxxxxxxxxxxxxxx"];

use Setup::*;

/// The classes and their templates.
pub const CLASSES: &[(&str, &[Template])] = &[
    (
        "dp-imm",
        &[
            t("x xx 10000 xxxxxxxxxxxxxxxxxxx xxxxx", Plain),
            t("x x x 10001 x x xxxxxxxxxxxx xxxxx xxxxx", Plain),
            t("x xx 100100 x xxxxxx xxxxxx xxxxx xxxxx", Plain),
            t("x xx 100101 xx xxxxxxxxxxxxxxxx xxxxx", Plain),
            t("x xx 100110 x xxxxxx xxxxxx xxxxx xxxxx", Plain),
            t("x xx 100111 x x xxxxx xxxxxx xxxxx xxxxx", Plain),
        ],
    ),
    (
        "dp-reg",
        &[
            t("x xx 01010 xx x xxxxx xxxxxx xxxxx xxxxx", Plain),
            t("x x x 01011 xx 0 xxxxx xxxxxx xxxxx xxxxx", Plain),
            t("x x x 01011 xx 1 xxxxx xxxxxx xxxxx xxxxx", Plain),
            t("x x x 11010000 xxxxx 000000 xxxxx xxxxx", Plain),
            t("x x 1 11010010 xxxxx xxxx x 0 xxxxx 0 xxxx", Plain),
            t("x x 0 11010100 xxxxx xxxx 0 x xxxxx xxxxx", Plain),
            t("x 1 0 11010110 00000 0000 xx xxxxx xxxxx", Plain),
            t("x 1 0 11010110 00000 00010 x xxxxx xxxxx", Plain),
            t("x 0 0 11010110 xxxxx 00001 x xxxxx xxxxx", Plain),
            t("x 0 0 11010110 xxxxx 0010 xx xxxxx xxxxx", Plain),
            t("x 0 0 11010110 xxxxx 010 x xx xxxxx xxxxx", Plain),
            t("x 00 11011 xxx xxxxx x xxxxx xxxxx xxxxx", Plain),
        ],
    ),
    (
        "branch",
        &[
            t("x 00101 xxxxxxxxxxxxxxxxxxxxxxxxxx", BranchImm),
            t("0101010 0 xxxxxxxxxxxxxxxxxxx 0 xxxx", BranchImm),
            t("x 011010 x xxxxxxxxxxxxxxxxxxx xxxxx", BranchImm),
            t("x 011011 x xxxxx xxxxxxxxxxxxxx xxxxx", BranchImm),
            t("1101011 0 0 xx 11111 000000 xxxxx 00000", BranchReg),
        ],
    ),
    (
        "system",
        &[
            t("11010101 00000011 0010 xxxx xxx 11111", Plain),
            t("11010101 00000011 0011 xxxx x1x 11111", Plain),
            t("11010101 00000011 0011 xxxx 10x 11111", Plain),
            t("1101010100 x 1 1 011 0100 0010 000 xxxxx", Plain),
            t("1101010100 x 1 1 011 0100 0100 00x xxxxx", Plain),
            t("1101010100 x 1 1 011 1101 0000 010 xxxxx", Plain),
            t(
                "1101010100 0 01 011 0111 0100 001 xxxxx",
                Mem { index: false },
            ),
            t("11010100 001 xxxxxxxxxxxxxxxx 000 00", Plain),
            t("11010100 000 xxxxxxxxxxxxxxxx 000 1x", Plain),
        ],
    ),
    (
        "ldst",
        &[
            t(
                "xx 111 x 01 xx xxxxxxxxxxxx xxxxx xxxxx",
                Mem { index: false },
            ),
            t(
                "xx 111 x 00 xx 0 xxxxxxxxx xx xxxxx xxxxx",
                Mem { index: false },
            ),
            t(
                "xx 111 x 00 xx 1 xxxxx xxx x 10 xxxxx xxxxx",
                Mem { index: true },
            ),
            t("xx 011 x 00 xxxxxxxxxxxxxxxxxxx xxxxx", Literal),
            t(
                "xx 101 x 0xx x xxxxxxx xxxxx xxxxx xxxxx",
                Mem { index: false },
            ),
        ],
    ),
    (
        "ldst-excl",
        &[
            t(
                "xx 001000 0 x 0 xxxxx x 11111 xxxxx xxxxx",
                Mem { index: true },
            ),
            t(
                "1x 001000 0 x 1 xxxxx x xxxxx xxxxx xxxxx",
                Mem { index: true },
            ),
            t(
                "xx 001000 1 x 0 11111 1 11111 xxxxx xxxxx",
                Mem { index: false },
            ),
            t("xx 001000 0 1 0 11111 x 11111 xxxxx xxxxx", ExclusivePair),
        ],
    ),
    (
        "simd-move",
        &[
            t("0 x 0 01110000 xxxxx 0 0000 1 xxxxx xxxxx", Plain),
            t("0 x 0 01110000 xxxxx 0 0001 1 xxxxx xxxxx", Plain),
            t("0 x 0 01110000 xxxxx 0 01x1 1 xxxxx xxxxx", Plain),
            t("0 1 0 01110000 xxxxx 0 0011 1 xxxxx xxxxx", Plain),
            t("0 1 1 01110000 xxxxx 0 xxxx 1 xxxxx xxxxx", Plain),
            t("01 0 11110000 xxxxx 0 0000 1 xxxxx xxxxx", Plain),
            // cmode 1111 is FMOV (vector, immediate): an fp-vector encoding.
            tr(
                "0 x x 0111100000 xxx xxxx 0 1 xxxxx xxxxx",
                Plain,
                &["xxxxxxxxxxxxxxxx 1111 xxxxxxxxxxxx"],
            ),
            t("0 x 101110 00 0 xxxxx 0 xxxx 0 xxxxx xxxxx", Plain),
            t("0 x 001110 00 0 xxxxx 0 xx x 00 xxxxx xxxxx", Plain),
            t("0 x 001110 xx 0 xxxxx 0 xxx 10 xxxxx xxxxx", Plain),
        ],
    ),
    (
        "simd-ldst",
        &[
            t(
                "0 x 0011000 x 000000 xxxx xx xxxxx xxxxx",
                Mem { index: false },
            ),
            t(
                "0 x 0011001 x 0 xxxxx xxxx xx xxxxx xxxxx",
                Mem { index: true },
            ),
            t(
                "0 x 0011010 x x 00000 xxx x xx xxxxx xxxxx",
                Mem { index: false },
            ),
            t(
                "0 x 0011011 x x xxxxx xxx x xx xxxxx xxxxx",
                Mem { index: true },
            ),
        ],
    ),
    (
        "simd-int",
        &[
            // Three same, integer opcodes (11xxx are floating point).
            tr(
                "0 x x 01110 xx 1 xxxxx xxxxx 1 xxxxx xxxxx",
                Plain,
                &["xxxxxxxxxxxxxxxx 11xxx xxxxxxxxxxx"],
            ),
            tr(
                "01 x 11110 xx 1 xxxxx xxxxx 1 xxxxx xxxxx",
                Plain,
                &["xxxxxxxxxxxxxxxx 11xxx xxxxxxxxxxx"],
            ),
            // Three different (64-bit PMULL is the crypto extension).
            tr(
                "0 x x 01110 xx 1 xxxxx xxxx 00 xxxxx xxxxx",
                Plain,
                &["xxxxxxxx 11 xxxxxx 1110 xxxxxxxxxxxx"],
            ),
            tr("01 0 11110 xx 1 xxxxx 1x01 00 xxxxx xxxxx", Plain, &[]),
            tr("01 0 11110 xx 1 xxxxx 1011 00 xxxxx xxxxx", Plain, &[]),
            // Two-register misc and across lanes, integer opcodes (0 11xx are floating point).
            tr(
                "0 x x 01110 xx 10000 0 xxxx 10 xxxxx xxxxx",
                Plain,
                &["xxxxxxxxxxxxxxxx 0 11xx xxxxxxxxxxxx"],
            ),
            tr(
                "01 x 11110 xx 10000 0 xxxx 10 xxxxx xxxxx",
                Plain,
                &["xxxxxxxxxxxxxxxx 0 11xx xxxxxxxxxxxx"],
            ),
            t("0 x x 01110 xx 10000 1 0010 10 xxxxx xxxxx", Plain),
            t("0 x x 01110 xx 10000 1 0100 10 xxxxx xxxxx", Plain),
            t("01 x 11110 xx 10000 1 0010 10 xxxxx xxxxx", Plain),
            t("01 x 11110 xx 10000 1 0100 10 xxxxx xxxxx", Plain),
            t("0 x x 01110 xx 11000 00011 10 xxxxx xxxxx", Plain),
            t("0 x x 01110 xx 11000 01010 10 xxxxx xxxxx", Plain),
            t("0 x x 01110 xx 11000 11010 10 xxxxx xxxxx", Plain),
            t("0 x 0 01110 xx 11000 11011 10 xxxxx xxxxx", Plain),
            t("01 0 11110 xx 11000 11011 10 xxxxx xxxxx", Plain),
            // Shift by immediate, vector and scalar (111xx are the FP conversions).
            tr(
                "0 x x 011110 xxxx xxx xxxxx 1 xxxxx xxxxx",
                Plain,
                &["xxxxxxxxxxxxxxxx 111xx xxxxxxxxxxx"],
            ),
            tr(
                "01 x 111110 xxxx xxx xxxxx 1 xxxxx xxxxx",
                Plain,
                &["xxxxxxxxxxxxxxxx 111xx xxxxxxxxxxx"],
            ),
            // By element, integer opcodes (vector and scalar).
            t("0 x 1 01111 xx x x xxxx 0x00 x 0 xxxxx xxxxx", Plain),
            t("0 x x 01111 xx x x xxxx 0x10 x 0 xxxxx xxxxx", Plain),
            t("0 x 0 01111 xx x x xxxx 0x11 x 0 xxxxx xxxxx", Plain),
            t("0 x x 01111 xx x x xxxx 1010 x 0 xxxxx xxxxx", Plain),
            t("0 x 0 01111 xx x x xxxx 1011 x 0 xxxxx xxxxx", Plain),
            t("0 x 0 01111 xx x x xxxx 1000 x 0 xxxxx xxxxx", Plain),
            t("0 x 0 01111 xx x x xxxx 110x x 0 xxxxx xxxxx", Plain),
            t("01 0 11111 xx x x xxxx 0x11 x 0 xxxxx xxxxx", Plain),
            t("01 0 11111 xx x x xxxx 1011 x 0 xxxxx xxxxx", Plain),
            t("01 0 11111 xx x x xxxx 110x x 0 xxxxx xxxxx", Plain),
        ],
    ),
    (
        "fp-scalar",
        &[
            tr(
                "x 0 0 11110 xx 1 xx 11x 000000 xxxxx xxxxx",
                Plain,
                NOT_FP16,
            ),
            tr(
                "0 0 0 11110 xx 1 0000 00 10000 xxxxx xxxxx",
                Plain,
                NOT_FP16,
            ),
            tr("0 0 0 11110 xx 1 xxxxxxxx 100 00000 xxxxx", Plain, NOT_FP16),
            tr(
                "0 0 0 11110 xx 1 xxxxx 00 1000 xxxxx xx 000",
                Plain,
                NOT_FP16,
            ),
            tr(
                "0 0 0 11110 xx 1 xxxxx xxxx 01 xxxxx x xxxx",
                Plain,
                NOT_FP16,
            ),
            tr(
                "0 0 0 11110 xx 1 xxxxx xxxx 11 xxxxx xxxxx",
                Plain,
                NOT_FP16,
            ),
            // One source, without the half-precision FCVTs (not yet) and FP16.
            tr(
                "0 0 0 11110 xx 1 0xxxxx 10000 xxxxx xxxxx",
                Plain,
                &[
                    "xxxxxxxx 11 xxxxxxxxxxxxxxxxxxxxxx",
                    "xxxxxxxx xx x 000111 xxxxxxxxxxxxxxx",
                    "xxxxxxxx 00 x 000100 xxxxxxxxxxxxxxx",
                    "xxxxxxxx 01 x 000101 xxxxxxxxxxxxxxx",
                    "xxxxxxxx xx x 01xxxx xxxxxxxxxxxxxxx",
                ],
            ),
            // FCVT between H, S and D (base ARMv8.0, not FP16 arithmetic).
            t("0 0 0 11110 xx 1 0001 xx 10000 xxxxx xxxxx", Plain),
            tr(
                "0 0 0 11110 xx 1 xxxxx xxxx 10 xxxxx xxxxx",
                Plain,
                NOT_FP16,
            ),
            tr(
                "0 0 0 11111 xx x xxxxx x xxxxx xxxxx xxxxx",
                Plain,
                NOT_FP16,
            ),
        ],
    ),
    (
        "fp-vector",
        &[
            t("0 x x 0111100000 xxx 1111 0 1 xxxxx xxxxx", Plain),
            t("0 x x 01110 x x 1 xxxxx 11 xxx 1 xxxxx xxxxx", Plain),
            t("01 x 11110 x x 1 xxxxx 11 xxx 1 xxxxx xxxxx", Plain),
            tr("0 x x 01110 x x 10000 011 xx 10 xxxxx xxxxx", Plain, &[]),
            t("0 x x 01110 x x 10000 1100 x 10 xxxxx xxxxx", Plain),
            t("0 x 1 01110 1 x 10000 11111 10 xxxxx xxxxx", Plain),
            // FRECPE/FRSQRTE/URECPE/URSQRTE (vector), FRECPE/FRSQRTE (scalar), FRECPX.
            t("0 x x 01110 1 x 10000 1110 x 10 xxxxx xxxxx", Plain),
            t("01 x 11110 1 x 10000 11101 10 xxxxx xxxxx", Plain),
            t("01 0 11110 1 x 10000 11111 10 xxxxx xxxxx", Plain),
            t("0 x 0 01110 0 x 10000 1011 x 10 xxxxx xxxxx", Plain),
            t("0 x 1 01110 0 1 10000 10110 10 xxxxx xxxxx", Plain),
            t("01 1 11110 0 1 10000 10110 10 xxxxx xxxxx", Plain),
            t("0 1 1 01110 x 0 11000 011 xx 10 xxxxx xxxxx", Plain),
            t("01 1 11110 x x 11000 011 xx 10 xxxxx xxxxx", Plain),
            t("0 x 0 01111 1 x x x xxxx x 0 01 x 0 xxxxx xxxxx", Plain),
            t("0 x 0 01111 1 x x x xxxx 1001 x 0 xxxxx xxxxx", Plain),
            t("01 0 11111 1 x x x xxxx x 0 01 x 0 xxxxx xxxxx", Plain),
            t("01 0 11111 1 x x x xxxx 1001 x 0 xxxxx xxxxx", Plain),
        ],
    ),
    (
        "fp-convert",
        &[
            // FCVT*/SCVTF/UCVTF (integer): opcodes 0xx; 11x are the FMOVs, 1xx with rmode != 00 unallocated.
            tr(
                "x 0 0 11110 xx 1 xx 0xx 000000 xxxxx xxxxx",
                Plain,
                NOT_FP16,
            ),
            tr(
                "x 0 0 11110 xx 1 00 10x 000000 xxxxx xxxxx",
                Plain,
                NOT_FP16,
            ),
            tr(
                "x 0 0 11110 xx 0 xx xxx xxxxxx xxxxx xxxxx",
                Plain,
                NOT_FP16,
            ),
        ],
    ),
    (
        "atomic",
        &[
            t(
                "xx 111 0 00 x x 1 xxxxx 0 xxx 00 xxxxx xxxxx",
                Mem { index: true },
            ),
            t(
                "xx 111 0 00 x x 1 xxxxx 1 000 00 xxxxx xxxxx",
                Mem { index: true },
            ),
            t(
                "xx 001000 1 x 1 xxxxx x 11111 xxxxx xxxxx",
                Mem { index: true },
            ),
            t(
                "0x 001000 0 x 1 xxxxx x 11111 xxxxx xxxxx",
                Mem { index: true },
            ),
        ],
    ),
];

/// Parses a pattern into (mask, value).
pub fn parse(pattern: &str) -> (u32, u32) {
    let mut mask = 0u32;
    let mut value = 0u32;
    for c in pattern.chars().filter(|c| *c != ' ') {
        mask <<= 1;
        value <<= 1;
        match c {
            '0' => mask |= 1,
            '1' => {
                mask |= 1;
                value |= 1
            }
            _ => {}
        }
    }
    (mask, value)
}

fn interesting(rng: &mut Rng) -> u64 {
    const SPECIAL: [u64; 12] = [
        0,
        1,
        u64::MAX,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0x1_0000_0000,
        i64::MAX as u64,
        i64::MIN as u64,
        0xffff_ffff_8000_0000,
        2,
        63,
    ];
    match rng.below(4) {
        0 => SPECIAL[rng.below(SPECIAL.len() as u64) as usize],
        1 => rng.below(128),
        _ => rng.next_u64(),
    }
}

/// A double-precision value biased towards the cases IEEE arithmetic finds hard.
fn interesting_f64(rng: &mut Rng) -> u64 {
    const SPECIAL: [u64; 16] = [
        0,
        1 << 63,
        0x3ff0_0000_0000_0000, // 1.0
        0xbff0_0000_0000_0000, // -1.0
        0x7ff0_0000_0000_0000, // +inf
        0xfff0_0000_0000_0000, // -inf
        0x7ff8_0000_0000_0000, // default NaN
        0x7ff4_0000_0000_0001, // signalling NaN
        0xfff8_0000_0000_1234, // negative quiet NaN with payload
        0x0000_0000_0000_0001, // smallest subnormal
        0x000f_ffff_ffff_ffff, // largest subnormal
        0x0010_0000_0000_0000, // smallest normal
        0x7fef_ffff_ffff_ffff, // largest finite
        0x43e0_0000_0000_0000, // 2^63
        0x41e0_0000_0000_0000, // 2^31
        0x3fe0_0000_0000_0000, // 0.5
    ];
    match rng.below(4) {
        0 => SPECIAL[rng.below(16) as usize],
        1 => (rng.next_u64() & 0x800f_ffff_ffff_ffff) | (0x3f0 + rng.below(0x20)) << 52,
        2 => ((rng.below(2000) as f64 - 1000.0) / 8.0).to_bits(),
        _ => rng.next_u64(),
    }
}

/// A single-precision value, likewise.
fn interesting_f32(rng: &mut Rng) -> u64 {
    const SPECIAL: [u32; 14] = [
        0,
        0x8000_0000,
        0x3f80_0000,
        0xbf80_0000,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0x7fa0_0001,
        0xffc0_1234,
        1,
        0x007f_ffff,
        0x0080_0000,
        0x7f7f_ffff,
        0x5f00_0000,
    ];
    (match rng.below(4) {
        0 => SPECIAL[rng.below(14) as usize],
        1 => (rng.next_u64() as u32 & 0x807f_ffff) | (0x78 + rng.below(0x10) as u32) << 23,
        2 => ((rng.below(2000) as f32 - 1000.0) / 8.0).to_bits(),
        _ => rng.next_u64() as u32,
    }) as u64
}

/// A 128-bit vector register value: integer-like, double lanes or single lanes.
fn interesting_vector(rng: &mut Rng) -> u128 {
    match rng.below(3) {
        0 => (interesting(rng) as u128) << 64 | interesting(rng) as u128,
        1 => (interesting_f64(rng) as u128) << 64 | interesting_f64(rng) as u128,
        _ => (0..4).fold(0u128, |acc, k| {
            acc | (interesting_f32(rng) as u128) << (32 * k)
        }),
    }
}

/// A scratch address for a base register: mostly aligned, sometimes at the edges.
fn scratch_address(rng: &mut Rng) -> u64 {
    let off = rng.below(SCRATCH_SIZE as u64);
    let off = match rng.below(8) {
        0..=4 => off & !15,
        5 => off & !7,
        6 => SCRATCH_SIZE as u64 - 16 + rng.below(32),
        _ => off,
    };
    SCRATCH_ADDR + off
}

/// A random initial state.
pub fn random_regs(rng: &mut Rng) -> Regs {
    let mut r = Regs::default();
    for x in r.x.iter_mut() {
        *x = interesting(rng);
    }
    r.sp = scratch_address(rng) & !15;
    r.nzcv = (rng.below(16)) << 28;
    // ARMv8.0 FPCR bits only: AHP, DN, FZ, RMode.
    r.fpcr = rng.next_u64() & 0x07c0_0000;
    r.fpsr = rng.next_u64() & 0x0800_009f;
    r.tpidr = interesting(rng);
    for v in r.v.iter_mut() {
        *v = interesting_vector(rng);
    }
    r
}

/// Sets the register encoded as `n` to `value` (31 is SP for base registers).
fn set_base(r: &mut Regs, n: u32, value: u64) {
    if n == 31 {
        r.sp = value;
    } else {
        r.x[n as usize] = value;
    }
}

/// Builds one random case of `template`.
pub fn make_case(template: &Template, rng: &mut Rng) -> Case {
    let (mask, value) = parse(template.pattern);
    let rejects: Vec<(u32, u32)> = template.reject.iter().map(|r| parse(r)).collect();
    let mut insn = value | (rng.next_u64() as u32 & !mask);
    // An index register that is also the base would put the address far outside the
    // scratch region (into the harness itself): draw again.
    let index_is_base = |insn: u32| {
        matches!(template.setup, Mem { index: true }) && insn >> 16 & 31 == insn >> 5 & 31
    };
    while rejects.iter().any(|(m, v)| insn & m == *v) || index_is_base(insn) {
        insn = value | (rng.next_u64() as u32 & !mask);
    }
    let mut regs = random_regs(rng);
    let mut insn2 = BRK_FILL;
    let rn = insn >> 5 & 31;
    match template.setup {
        Plain => {}
        Mem { index } => {
            if index {
                let m = insn >> 16 & 31;
                if m != 31 {
                    regs.x[m as usize] = rng.below(256).wrapping_sub(64);
                }
            }
            set_base(&mut regs, rn, scratch_address(rng));
        }
        BranchImm => {
            // Keep targets within [0x400, 0xc00) of the code page and never the branch itself.
            let mut words = rng.below(511) as i64 - 255;
            if words == 0 {
                words = 1;
            }
            insn = if insn & 0x7c00_0000 == 0x1400_0000 {
                insn & !0x03ff_ffff | (words as u32 & 0x03ff_ffff)
            } else if insn & 0x7e00_0000 == 0x3600_0000 {
                insn & !(0x3fff << 5) | ((words as u32 & 0x3fff) << 5)
            } else {
                insn & !(0x7ffff << 5) | ((words as u32 & 0x7ffff) << 5)
            };
        }
        BranchReg => {
            let target =
                CODE_ADDR + 0x400 + 4 * rng.below(256) + if rng.chance(1, 16) { 2 } else { 0 };
            if rn != 31 {
                regs.x[rn as usize] = target;
            }
        }
        Literal => {
            if rng.chance(7, 8) {
                let words = rng.below(1024) as i64 - 512;
                insn = insn & !(0x7ffff << 5) | ((words as u32 & 0x7ffff) << 5);
            }
        }
        ExclusivePair => {
            let t = insn & 31;
            // Status register distinct from the data and base registers.
            let mut s = rng.below(31) as u32;
            while s == t || s == rn {
                s = (s + 1) % 31;
            }
            let base = scratch_address(rng) & !15;
            set_base(&mut regs, rn, base);
            // insn is the load-exclusive; the store uses the same size, base and data register.
            insn2 = (insn & !(1 << 22) & !(31 << 16)) | s << 16;
        }
    }
    Case {
        regs,
        insn,
        insn2,
        mem_seed: rng.next_u64(),
    }
}
