//! Presenting our software CPU's feature set on a KVM vCPU, where the host
//! kernel lets userspace lower ID registers (Linux 6.7 and later): a guest
//! booted so uses nothing the software CPU lacks, and can move between
//! the backends both ways. Older kernels refuse the writes; the vCPU then
//! presents the host's features, and a move to the software CPU is
//! refused naming what differs.

use a64::IdRegisters;
use kvm_ioctls::VcpuFd;

use super::regs;

/// (CRm, op2) of each feature ID register, in [`IdRegisters`] order.
const REGS: [(u64, u64); 9] = [
    (4, 0),
    (4, 1),
    (5, 0),
    (6, 0),
    (6, 1),
    (6, 2),
    (7, 0),
    (7, 1),
    (7, 2),
];

fn as_array(r: &IdRegisters) -> [u64; 9] {
    [
        r.pfr0, r.pfr1, r.dfr0, r.isar0, r.isar1, r.isar2, r.mmfr0, r.mmfr1, r.mmfr2,
    ]
}

/// Lowers the vCPU's feature fields to `soft`'s, as far as KVM accepts:
/// each register whole, else field by field. Returns the ID registers the
/// vCPU presents afterwards.
pub(crate) fn restrict(fd: &VcpuFd, soft: &IdRegisters) -> Result<IdRegisters, String> {
    let now = regs::id_registers(fd)?;
    let want = as_array(&now.limited_to(soft));
    for (i, &(crm, op2)) in REGS.iter().enumerate() {
        let id = regs::sys(3, 0, 0, crm, op2);
        let mut current = as_array(&now)[i];
        if current == want[i] || regs::set(fd, id, want[i]).is_ok() {
            continue;
        }
        for shift in (0..64).step_by(4) {
            let nibble = 0xf << shift;
            if current & nibble != want[i] & nibble {
                let next = current & !nibble | want[i] & nibble;
                if regs::set(fd, id, next).is_ok() {
                    current = next;
                }
            }
        }
    }
    regs::id_registers(fd)
}
