//! A small x86-64 assembler: just the instruction forms the JIT emits,
//! with forward jumps patched once their targets are known.

/// General registers, numbered as in the encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)]
pub enum R {
    Rax = 0,
    Rcx = 1,
    Rdx = 2,
    Rbx = 3,
    Rsp = 4,
    Rbp = 5,
    Rsi = 6,
    Rdi = 7,
    R8 = 8,
    R9 = 9,
    R10 = 10,
    R11 = 11,
    R12 = 12,
    R13 = 13,
    R14 = 14,
    R15 = 15,
}

impl R {
    fn low(self) -> u8 {
        self as u8 & 7
    }
}

/// Condition codes for Jcc/SETcc/CMOVcc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)]
pub enum Cc {
    O = 0,
    No = 1,
    B = 2,
    Ae = 3,
    E = 4,
    Ne = 5,
    Be = 6,
    A = 7,
    S = 8,
    Ns = 9,
    L = 12,
    Ge = 13,
    Le = 14,
    G = 15,
}

/// Two-operand ALU operations (the /digit of the 0x81 group and the
/// opcode of the register form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alu {
    Add = 0,
    Or = 1,
    And = 4,
    Sub = 5,
    Xor = 6,
    Cmp = 7,
}

/// Shift operations (the /digit of the 0xC1/0xD3 group).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shift {
    Ror = 1,
    Shl = 4,
    Shr = 5,
    Sar = 7,
}

/// A forward jump waiting for its target.
#[derive(Clone, Copy, Debug)]
pub struct Label(usize);

/// Machine code being assembled.
#[derive(Default)]
pub struct Asm {
    /// The bytes so far.
    pub code: Vec<u8>,
}

impl Asm {
    /// An assembler with room for `bytes` of code.
    pub fn with_capacity(bytes: usize) -> Self {
        Asm {
            code: Vec::with_capacity(bytes),
        }
    }

    fn byte(&mut self, b: u8) {
        self.code.push(b);
    }

    fn u32(&mut self, v: u32) {
        self.code.extend_from_slice(&v.to_le_bytes());
    }

    /// REX prefix (emitted when needed, or always for 64-bit operands).
    fn rex(&mut self, w: bool, reg: u8, base: u8, force: bool) {
        let rex = 0x40 | (w as u8) << 3 | (reg >> 3 & 1) << 2 | (base >> 3 & 1);
        if rex != 0x40 || force {
            self.byte(rex);
        }
    }

    /// ModRM (+SIB, displacement) for `[base + disp]`.
    fn mem(&mut self, reg: u8, base: R, disp: i32) {
        let (mode, small) = if disp == 0 && base.low() != 5 {
            (0, None)
        } else if (-128..128).contains(&disp) {
            (1, Some(true))
        } else {
            (2, Some(false))
        };
        self.byte(mode << 6 | (reg & 7) << 3 | base.low());
        if base.low() == 4 {
            self.byte(0x24); // SIB: base only
        }
        match small {
            Some(true) => self.byte(disp as i8 as u8),
            Some(false) => self.u32(disp as u32),
            None => {}
        }
    }

    fn modrm_rr(&mut self, reg: u8, rm: R) {
        self.byte(0xc0 | (reg & 7) << 3 | rm.low());
    }

    /// `mov dst, [base + disp]` (64-bit, or 32-bit zero-extending).
    pub fn load(&mut self, w: bool, dst: R, base: R, disp: i32) {
        self.rex(w, dst as u8, base as u8, false);
        self.byte(0x8b);
        self.mem(dst as u8, base, disp);
    }

    /// `mov [base + disp], src` (64-bit or 32-bit).
    pub fn store(&mut self, w: bool, base: R, disp: i32, src: R) {
        self.rex(w, src as u8, base as u8, false);
        self.byte(0x89);
        self.mem(src as u8, base, disp);
    }

    /// `mov dst, src` (64-bit).
    pub fn mov(&mut self, dst: R, src: R) {
        self.rex(true, src as u8, dst as u8, false);
        self.byte(0x89);
        self.modrm_rr(src as u8, dst);
    }

    /// `mov dst32, src32` (zero-extends into the 64-bit register).
    pub fn mov32(&mut self, dst: R, src: R) {
        self.rex(false, src as u8, dst as u8, false);
        self.byte(0x89);
        self.modrm_rr(src as u8, dst);
    }

    /// Loads a 64-bit constant (the shortest form).
    pub fn mov_imm(&mut self, dst: R, v: u64) {
        if v <= u32::MAX as u64 {
            self.rex(false, 0, dst as u8, false);
            self.byte(0xb8 + dst.low());
            self.u32(v as u32);
        } else if v as i64 >= i32::MIN as i64 && v as i64 <= i32::MAX as i64 {
            self.rex(true, 0, dst as u8, false);
            self.byte(0xc7);
            self.modrm_rr(0, dst);
            self.u32(v as u32);
        } else {
            self.rex(true, 0, dst as u8, false);
            self.byte(0xb8 + dst.low());
            self.code.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Stores a 64-bit constant at `[base + disp]`.
    pub fn store_imm(&mut self, base: R, disp: i32, v: u64, scratch: R) {
        if v as i64 >= i32::MIN as i64 && v as i64 <= i32::MAX as i64 {
            self.rex(true, 0, base as u8, false);
            self.byte(0xc7);
            self.mem(0, base, disp);
            self.u32(v as u32);
        } else {
            self.mov_imm(scratch, v);
            self.store(true, base, disp, scratch);
        }
    }

    /// `op dst, src` (64-bit or 32-bit).
    pub fn alu(&mut self, w: bool, op: Alu, dst: R, src: R) {
        self.rex(w, src as u8, dst as u8, false);
        self.byte((op as u8) << 3 | 1);
        self.modrm_rr(src as u8, dst);
    }

    /// `op dst, imm32` (sign-extended for 64-bit operations).
    pub fn alu_imm(&mut self, w: bool, op: Alu, dst: R, imm: i32) {
        self.rex(w, 0, dst as u8, false);
        if (-128..128).contains(&imm) {
            self.byte(0x83);
            self.modrm_rr(op as u8, dst);
            self.byte(imm as i8 as u8);
        } else {
            self.byte(0x81);
            self.modrm_rr(op as u8, dst);
            self.u32(imm as u32);
        }
    }

    /// `shift dst, imm8`.
    pub fn shift_imm(&mut self, w: bool, op: Shift, dst: R, amount: u8) {
        self.rex(w, 0, dst as u8, false);
        self.byte(0xc1);
        self.modrm_rr(op as u8, dst);
        self.byte(amount);
    }

    /// `op dst, cl`: a shift by CL, which the host masks to 6 bits (5 for
    /// 32-bit operations), as A64 takes the amount modulo the register size.
    pub fn shift_cl(&mut self, w: bool, op: Shift, dst: R) {
        self.rex(w, 0, dst as u8, false);
        self.byte(0xd3);
        self.modrm_rr(op as u8, dst);
    }

    /// `op reg, [base + disp]` (64-bit or 32-bit).
    pub fn alu_load(&mut self, w: bool, op: Alu, reg: R, base: R, disp: i32) {
        self.rex(w, reg as u8, base as u8, false);
        self.byte((op as u8) << 3 | 3);
        self.mem(reg as u8, base, disp);
    }

    /// `op qword [base + disp], imm32`.
    pub fn alu_mem_imm(&mut self, op: Alu, base: R, disp: i32, imm: i32) {
        self.rex(true, 0, base as u8, false);
        if (-128..128).contains(&imm) {
            self.byte(0x83);
            self.mem(op as u8, base, disp);
            self.byte(imm as i8 as u8);
        } else {
            self.byte(0x81);
            self.mem(op as u8, base, disp);
            self.u32(imm as u32);
        }
    }

    /// `jmp qword [base + disp]`.
    pub fn jmp_mem(&mut self, base: R, disp: i32) {
        self.rex(false, 0, base as u8, false);
        self.byte(0xff);
        self.mem(4, base, disp);
    }

    /// `not dst`.
    pub fn not(&mut self, w: bool, dst: R) {
        self.rex(w, 0, dst as u8, false);
        self.byte(0xf7);
        self.modrm_rr(2, dst);
    }

    /// `neg dst`.
    pub fn neg(&mut self, w: bool, dst: R) {
        self.rex(w, 0, dst as u8, false);
        self.byte(0xf7);
        self.modrm_rr(3, dst);
    }

    /// `imul dst, src`.
    pub fn imul(&mut self, w: bool, dst: R, src: R) {
        self.rex(w, dst as u8, src as u8, false);
        self.byte(0x0f);
        self.byte(0xaf);
        self.modrm_rr(dst as u8, src);
    }

    /// `mov dword [base + disp], src32`.
    pub fn store32(&mut self, base: R, disp: i32, src: R) {
        self.store(false, base, disp, src);
    }

    /// Loads `size` bytes at `[base + disp]` into `dst`, zero- or
    /// sign-extended (to 64 bits, or to 32 then zero-extended).
    pub fn load_sized(&mut self, size: u8, signed: bool, to64: bool, dst: R, base: R, disp: i32) {
        match (size, signed) {
            (8, _) => self.load(true, dst, base, disp),
            (4, false) => self.load(false, dst, base, disp),
            (4, true) => {
                self.rex(true, dst as u8, base as u8, false);
                self.byte(0x63);
                self.mem(dst as u8, base, disp);
            }
            (_, _) => {
                self.rex(signed && to64, dst as u8, base as u8, false);
                self.byte(0x0f);
                let op = if size == 1 { 0xb6 } else { 0xb7 };
                self.byte(if signed { op + 8 } else { op });
                self.mem(dst as u8, base, disp);
            }
        }
    }

    /// Stores the low `size` bytes of `src` at `[base + disp]`.
    pub fn store_sized(&mut self, size: u8, base: R, disp: i32, src: R) {
        match size {
            8 => self.store(true, base, disp, src),
            4 => self.store(false, base, disp, src),
            2 => {
                self.byte(0x66);
                self.store(false, base, disp, src);
            }
            _ => {
                self.rex(false, src as u8, base as u8, true);
                self.byte(0x88);
                self.mem(src as u8, base, disp);
            }
        }
    }

    /// `jmp` to a label bound later.
    pub fn jmp(&mut self) -> Label {
        self.byte(0xe9);
        self.u32(0);
        Label(self.code.len())
    }

    /// `test a, b`.
    pub fn test(&mut self, w: bool, a: R, b: R) {
        self.rex(w, b as u8, a as u8, false);
        self.byte(0x85);
        self.modrm_rr(b as u8, a);
    }

    /// `bt a, b` (bit b of a into CF).
    pub fn bt(&mut self, w: bool, a: R, b: R) {
        self.rex(w, b as u8, a as u8, false);
        self.byte(0x0f);
        self.byte(0xa3);
        self.modrm_rr(b as u8, a);
    }

    /// `bt a, imm8`.
    pub fn bt_imm(&mut self, w: bool, a: R, bit: u8) {
        self.rex(w, 0, a as u8, false);
        self.byte(0x0f);
        self.byte(0xba);
        self.modrm_rr(4, a);
        self.byte(bit);
    }

    /// `setcc dst8` then `movzx dst, dst8`.
    pub fn setcc(&mut self, cc: Cc, dst: R) {
        self.rex(false, 0, dst as u8, true);
        self.byte(0x0f);
        self.byte(0x90 | cc as u8);
        self.modrm_rr(0, dst);
        self.rex(false, dst as u8, dst as u8, true);
        self.byte(0x0f);
        self.byte(0xb6);
        self.modrm_rr(dst as u8, dst);
    }

    /// `cmovcc dst, src` (64-bit).
    pub fn cmov(&mut self, cc: Cc, dst: R, src: R) {
        self.rex(true, dst as u8, src as u8, false);
        self.byte(0x0f);
        self.byte(0x40 | cc as u8);
        self.modrm_rr(dst as u8, src);
    }

    /// `lea dst, [base + disp]`.
    pub fn lea(&mut self, dst: R, base: R, disp: i32) {
        self.rex(true, dst as u8, base as u8, false);
        self.byte(0x8d);
        self.mem(dst as u8, base, disp);
    }

    /// `call reg`.
    pub fn call(&mut self, target: R) {
        self.rex(false, 0, target as u8, false);
        self.byte(0xff);
        self.modrm_rr(2, target);
    }

    /// `push reg`.
    pub fn push(&mut self, r: R) {
        self.rex(false, 0, r as u8, false);
        self.byte(0x50 + r.low());
    }

    /// `pop reg`.
    pub fn pop(&mut self, r: R) {
        self.rex(false, 0, r as u8, false);
        self.byte(0x58 + r.low());
    }

    /// `ret`.
    pub fn ret(&mut self) {
        self.byte(0xc3);
    }

    /// `jcc` to a label bound later.
    pub fn jcc(&mut self, cc: Cc) -> Label {
        self.byte(0x0f);
        self.byte(0x80 | cc as u8);
        self.u32(0);
        Label(self.code.len())
    }

    /// `test al, al` (a C `bool`/`u8` result).
    pub fn test_al(&mut self) {
        self.byte(0x84);
        self.byte(0xc0);
    }

    /// The current position, for backward jumps.
    pub fn here(&self) -> usize {
        self.code.len()
    }

    /// `jmp` back to an earlier position.
    pub fn jmp_back(&mut self, target: usize) {
        self.byte(0xe9);
        let rel = target as i64 - (self.code.len() as i64 + 4);
        self.u32(rel as i32 as u32);
    }

    /// Makes `label`'s jump land here.
    pub fn bind(&mut self, label: Label) {
        let rel = (self.code.len() - label.0) as u32;
        self.code[label.0 - 4..label.0].copy_from_slice(&rel.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asm(f: impl FnOnce(&mut Asm)) -> Vec<u8> {
        let mut a = Asm::default();
        f(&mut a);
        a.code
    }

    #[test]
    fn encodings_match_the_manual() {
        // Checked against GNU as.
        assert_eq!(
            asm(|a| a.load(true, R::Rax, R::Rbx, 8)),
            [0x48, 0x8b, 0x43, 0x08]
        );
        assert_eq!(
            asm(|a| a.load(true, R::R9, R::R12, 0x200)),
            [0x4d, 0x8b, 0x8c, 0x24, 0, 2, 0, 0]
        );
        assert_eq!(
            asm(|a| a.store(false, R::R13, 0, R::Rcx)),
            [0x41, 0x89, 0x4d, 0x00]
        );
        assert_eq!(
            asm(|a| a.alu(true, Alu::Sub, R::Rax, R::Rcx)),
            [0x48, 0x29, 0xc8]
        );
        assert_eq!(
            asm(|a| a.alu_imm(true, Alu::Add, R::Rax, 1)),
            [0x48, 0x83, 0xc0, 0x01]
        );
        assert_eq!(
            asm(|a| a.alu_imm(false, Alu::Cmp, R::R8, 0x1000)),
            [0x41, 0x81, 0xf8, 0, 0x10, 0, 0]
        );
        assert_eq!(
            asm(|a| a.shift_imm(true, Shift::Shr, R::Rdx, 28)),
            [0x48, 0xc1, 0xea, 28]
        );
        assert_eq!(
            asm(|a| a.setcc(Cc::S, R::Rcx)),
            [0x40, 0x0f, 0x98, 0xc1, 0x40, 0x0f, 0xb6, 0xc9]
        );
        assert_eq!(
            asm(|a| a.cmov(Cc::B, R::Rax, R::Rdx)),
            [0x48, 0x0f, 0x42, 0xc2]
        );
        assert_eq!(
            asm(|a| a.mov_imm(R::Rax, u64::MAX)),
            [0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            asm(|a| a.mov_imm(R::R10, 0x1234)),
            [0x41, 0xba, 0x34, 0x12, 0, 0]
        );
        assert_eq!(asm(|a| a.call(R::Rax)), [0xff, 0xd0]);
        assert_eq!(asm(|a| a.push(R::R15)), [0x41, 0x57]);
        assert_eq!(asm(|a| a.bt(false, R::Rcx, R::Rax)), [0x0f, 0xa3, 0xc1]);
        assert_eq!(asm(|a| a.lea(R::Rdx, R::R13, 48)), [0x49, 0x8d, 0x55, 0x30]);
        assert_eq!(
            asm(|a| a.alu_load(true, Alu::Cmp, R::Rax, R::R12, 8)),
            [0x49, 0x3b, 0x44, 0x24, 0x08]
        );
        assert_eq!(
            asm(|a| a.alu_mem_imm(Alu::Add, R::Rbx, 0x540, 5)),
            [0x48, 0x83, 0x83, 0x40, 0x05, 0, 0, 5]
        );
        assert_eq!(asm(|a| a.jmp_mem(R::Rcx, 16)), [0xff, 0x61, 0x10]);
        assert_eq!(asm(|a| a.not(true, R::Rcx)), [0x48, 0xf7, 0xd1]);
        assert_eq!(asm(|a| a.neg(false, R::R8)), [0x41, 0xf7, 0xd8]);
        assert_eq!(
            asm(|a| a.imul(true, R::Rax, R::R9)),
            [0x49, 0x0f, 0xaf, 0xc1]
        );
        assert_eq!(
            asm(|a| a.shift_imm(false, Shift::Ror, R::Rcx, 3)),
            [0xc1, 0xc9, 3]
        );
        assert_eq!(
            asm(|a| a.shift_cl(true, Shift::Shl, R::Rax)),
            [0x48, 0xd3, 0xe0]
        );
        assert_eq!(asm(|a| a.shift_cl(false, Shift::Ror, R::Rcx)), [0xd3, 0xc9]);
        assert_eq!(
            asm(|a| a.shift_cl(true, Shift::Sar, R::R9)),
            [0x49, 0xd3, 0xf9]
        );
        assert_eq!(
            asm(|a| a.shift_cl(false, Shift::Shr, R::R8)),
            [0x41, 0xd3, 0xe8]
        );
        assert_eq!(
            asm(|a| a.bt_imm(true, R::Rax, 40)),
            [0x48, 0x0f, 0xba, 0xe0, 40]
        );
        let sized = [
            (
                asm(|a| a.load_sized(1, false, true, R::R9, R::Rax, 0)),
                &[0x44, 0x0f, 0xb6, 0x08][..],
            ),
            (
                asm(|a| a.load_sized(2, true, true, R::R9, R::Rax, 0)),
                &[0x4c, 0x0f, 0xbf, 0x08],
            ),
            (
                asm(|a| a.load_sized(1, true, false, R::R9, R::Rax, 0)),
                &[0x44, 0x0f, 0xbe, 0x08],
            ),
            (
                asm(|a| a.load_sized(4, true, true, R::R9, R::Rax, 8)),
                &[0x4c, 0x63, 0x48, 0x08],
            ),
            (
                asm(|a| a.store_sized(1, R::Rax, 0, R::Rsi)),
                &[0x40, 0x88, 0x30],
            ),
            (
                asm(|a| a.store_sized(2, R::Rax, 2, R::R9)),
                &[0x66, 0x44, 0x89, 0x48, 0x02],
            ),
        ];
        for (got, want) in sized {
            assert_eq!(got, want);
        }
    }
}
