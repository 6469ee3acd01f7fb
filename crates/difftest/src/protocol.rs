//! The binary protocol spoken with the harness (`harness/harness.c`): the
//! register state, a test case and a result, all little endian, laid out
//! exactly as the C structures.

/// Guest address of the scratch memory region.
pub const SCRATCH_ADDR: u64 = 0x1000_0000;
/// Size of the scratch memory region.
pub const SCRATCH_SIZE: usize = 0x2000;
/// Guest address of the code page.
pub const CODE_ADDR: u64 = 0x2000_0000;
/// Offset of the instruction under test in the code page.
pub const INSN_OFF: u64 = 0x800;
/// Offset of the register state area in the code page.
pub const STATE_OFF: u64 = 0xc00;
/// The word that fills the code page: `brk #1`.
pub const BRK_FILL: u32 = 0xd420_0020;
/// Size of the code page image the harness sends first.
pub const CODE_PAGE: usize = 4096;

/// Architectural state compared between the two sides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    /// X0..X30.
    pub x: [u64; 31],
    /// Stack pointer.
    pub sp: u64,
    /// NZCV in PSTATE layout.
    pub nzcv: u64,
    /// FPCR.
    pub fpcr: u64,
    /// FPSR.
    pub fpsr: u64,
    /// TPIDR_EL0.
    pub tpidr: u64,
    /// V0..V31.
    pub v: [u128; 32],
}

/// Bytes of [`Regs`] on the wire.
pub const REGS_BYTES: usize = 36 * 8 + 32 * 16;

impl Regs {
    /// Serialises in the harness's layout.
    pub fn to_bytes(&self, out: &mut Vec<u8>) {
        for x in self.x {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for w in [self.sp, self.nzcv, self.fpcr, self.fpsr, self.tpidr] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        for v in self.v {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Parses the harness's layout.
    pub fn from_bytes(b: &[u8]) -> Regs {
        let word = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        let mut r = Regs::default();
        for (i, x) in r.x.iter_mut().enumerate() {
            *x = word(i);
        }
        r.sp = word(31);
        r.nzcv = word(32);
        r.fpcr = word(33);
        r.fpsr = word(34);
        r.tpidr = word(35);
        for (i, v) in r.v.iter_mut().enumerate() {
            let o = 288 + 16 * i;
            *v = u128::from_le_bytes(b[o..o + 16].try_into().expect("16 bytes"));
        }
        r
    }
}

/// One test case: the state, one or two instructions and the scratch memory seed.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// Initial state.
    pub regs: Regs,
    /// Instruction under test (at CODE_ADDR + INSN_OFF).
    pub insn: u32,
    /// The following word (BRK_FILL for single-instruction cases).
    pub insn2: u32,
    /// Seed of the scratch memory contents.
    pub mem_seed: u64,
}

impl Case {
    /// Serialises in the harness's layout.
    pub fn to_bytes(&self, out: &mut Vec<u8>) {
        self.regs.to_bytes(out);
        out.extend_from_slice(&self.insn.to_le_bytes());
        out.extend_from_slice(&self.insn2.to_le_bytes());
        out.extend_from_slice(&self.mem_seed.to_le_bytes());
    }
}

/// How a case ended and the state then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Signal number that ended it (SIGTRAP from the BRK after a completed instruction).
    pub sig: u32,
    /// PC when it ended.
    pub pc: u64,
    /// Faulting address for SIGSEGV/SIGBUS.
    pub fault_addr: u64,
    /// FNV-1a hash of the scratch memory afterwards.
    pub mem_hash: u64,
    /// Registers afterwards.
    pub regs: Regs,
}

/// Bytes of [`Outcome`] on the wire.
pub const OUTCOME_BYTES: usize = 32 + REGS_BYTES;

impl Outcome {
    /// Parses the harness's layout.
    pub fn from_bytes(b: &[u8]) -> Outcome {
        let word = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        Outcome {
            sig: u32::from_le_bytes(b[0..4].try_into().expect("4 bytes")),
            pc: word(8),
            fault_addr: word(16),
            mem_hash: word(24),
            regs: Regs::from_bytes(&b[32..]),
        }
    }
}

/// Fills the scratch memory exactly as the harness does (xorshift64*).
pub fn fill_scratch(seed: u64, mem: &mut [u8]) {
    let mut s = seed | 1;
    for chunk in mem.chunks_exact_mut(8) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        chunk.copy_from_slice(&s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
}

/// FNV-1a over the scratch memory, as the harness computes it.
pub fn hash_scratch(mem: &[u8]) -> u64 {
    mem.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}
