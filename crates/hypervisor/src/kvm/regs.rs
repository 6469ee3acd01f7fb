//! KVM's register identifiers for arm64 (`KVM_GET/SET_ONE_REG`) and typed
//! access through them.

use std::mem::offset_of;

use kvm_bindings::{
    kvm_regs, user_fpsimd_state, user_pt_regs, KVM_REG_ARM64, KVM_REG_ARM64_SYSREG,
    KVM_REG_ARM_CORE, KVM_REG_SIZE_U128, KVM_REG_SIZE_U32, KVM_REG_SIZE_U64,
};
use kvm_ioctls::VcpuFd;

/// A core register at byte `offset` of `struct kvm_regs`, `size` wide.
const fn core(offset: usize, size: u64) -> u64 {
    KVM_REG_ARM64 | size | KVM_REG_ARM_CORE as u64 | (offset / 4) as u64
}

/// General register Xn.
pub(crate) const fn x(n: usize) -> u64 {
    core(
        offset_of!(kvm_regs, regs) + offset_of!(user_pt_regs, regs) + n * 8,
        KVM_REG_SIZE_U64,
    )
}
/// SP_EL0.
pub(crate) const SP_EL0: u64 = core(
    offset_of!(kvm_regs, regs) + offset_of!(user_pt_regs, sp),
    KVM_REG_SIZE_U64,
);
/// The program counter.
pub(crate) const PC: u64 = core(
    offset_of!(kvm_regs, regs) + offset_of!(user_pt_regs, pc),
    KVM_REG_SIZE_U64,
);
/// PSTATE in SPSR layout.
pub(crate) const PSTATE: u64 = core(
    offset_of!(kvm_regs, regs) + offset_of!(user_pt_regs, pstate),
    KVM_REG_SIZE_U64,
);
/// SP_EL1.
pub(crate) const SP_EL1: u64 = core(offset_of!(kvm_regs, sp_el1), KVM_REG_SIZE_U64);
/// ELR_EL1.
pub(crate) const ELR_EL1: u64 = core(offset_of!(kvm_regs, elr_el1), KVM_REG_SIZE_U64);
/// SPSR_EL1 (the first of the banked SPSRs).
pub(crate) const SPSR_EL1: u64 = core(offset_of!(kvm_regs, spsr), KVM_REG_SIZE_U64);
/// SIMD&FP register Vn.
pub(crate) const fn v(n: usize) -> u64 {
    core(
        offset_of!(kvm_regs, fp_regs) + offset_of!(user_fpsimd_state, vregs) + n * 16,
        KVM_REG_SIZE_U128,
    )
}
/// FPSR.
pub(crate) const FPSR: u64 = core(
    offset_of!(kvm_regs, fp_regs) + offset_of!(user_fpsimd_state, fpsr),
    KVM_REG_SIZE_U32,
);
/// FPCR.
pub(crate) const FPCR: u64 = core(
    offset_of!(kvm_regs, fp_regs) + offset_of!(user_fpsimd_state, fpcr),
    KVM_REG_SIZE_U32,
);

/// The system register with encoding (op0, op1, CRn, CRm, op2).
pub(crate) const fn sys(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64) -> u64 {
    KVM_REG_ARM64
        | KVM_REG_SIZE_U64
        | KVM_REG_ARM64_SYSREG as u64
        | op0 << 14
        | op1 << 11
        | crn << 7
        | crm << 3
        | op2
}

/// MPIDR_EL1.
pub(crate) const MPIDR_EL1: u64 = sys(3, 0, 0, 0, 5);

/// The feature ID registers the vCPU presents.
pub(crate) fn id_registers(fd: &VcpuFd) -> Result<a64::IdRegisters, String> {
    let id = |crm, op2| get(fd, sys(3, 0, 0, crm, op2));
    Ok(a64::IdRegisters {
        pfr0: id(4, 0)?,
        pfr1: id(4, 1)?,
        dfr0: id(5, 0)?,
        isar0: id(6, 0)?,
        isar1: id(6, 1)?,
        isar2: id(6, 2)?,
        mmfr0: id(7, 0)?,
        mmfr1: id(7, 1)?,
        mmfr2: id(7, 2)?,
    })
}
/// The virtual timer's control (CNTV_CTL_EL0).
pub(crate) const TIMER_CTL: u64 = sys(3, 3, 14, 3, 1);
/// The virtual counter (KVM names CNTVCT_EL0 with this encoding).
pub(crate) const TIMER_CNT: u64 = sys(3, 3, 14, 3, 2);
/// The virtual timer's compare value (CNTV_CVAL_EL0).
pub(crate) const TIMER_CVAL: u64 = sys(3, 3, 14, 0, 2);
/// The physical timer's control (CNTP_CTL_EL0).
pub(crate) const PTIMER_CTL: u64 = sys(3, 3, 14, 2, 1);
/// The physical timer's compare value (CNTP_CVAL_EL0).
pub(crate) const PTIMER_CVAL: u64 = sys(3, 3, 14, 2, 2);

/// Reads a 64-bit (or narrower) register.
pub(crate) fn get(fd: &VcpuFd, id: u64) -> Result<u64, String> {
    let mut b = [0u8; 8];
    fd.get_one_reg(id, &mut b)
        .map_err(|e| format!("KVM cannot read register {id:#x}: {e}"))?;
    Ok(u64::from_le_bytes(b))
}

/// Writes a 64-bit (or narrower) register.
pub(crate) fn set(fd: &VcpuFd, id: u64, value: u64) -> Result<(), String> {
    fd.set_one_reg(id, &value.to_le_bytes())
        .map(|_| ())
        .map_err(|e| format!("KVM refused register {id:#x} = {value:#x}: {e}"))
}

/// Reads a 128-bit register.
pub(crate) fn get128(fd: &VcpuFd, id: u64) -> Result<u128, String> {
    let mut b = [0u8; 16];
    fd.get_one_reg(id, &mut b)
        .map_err(|e| format!("KVM cannot read register {id:#x}: {e}"))?;
    Ok(u128::from_le_bytes(b))
}

/// Writes a 128-bit register.
pub(crate) fn set128(fd: &VcpuFd, id: u64, value: u128) -> Result<(), String> {
    fd.set_one_reg(id, &value.to_le_bytes())
        .map(|_| ())
        .map_err(|e| format!("KVM refused register {id:#x}: {e}"))
}
