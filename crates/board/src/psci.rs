//! PSCI 1.0 and the SMCCC discovery calls, reached through HVC #0.

/// Function IDs.
mod id {
    pub const SMCCC_VERSION: u32 = 0x8000_0000;
    pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
    pub const PSCI_VERSION: u32 = 0x8400_0000;
    pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
    pub const CPU_SUSPEND_64: u32 = 0xc400_0001;
    pub const CPU_OFF: u32 = 0x8400_0002;
    pub const CPU_ON_32: u32 = 0x8400_0003;
    pub const CPU_ON_64: u32 = 0xc400_0003;
    pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
    pub const AFFINITY_INFO_64: u32 = 0xc400_0004;
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    pub const PSCI_FEATURES: u32 = 0x8400_000a;
}

/// PSCI return codes.
pub mod status {
    /// Success.
    pub const SUCCESS: i64 = 0;
    /// The function is not implemented.
    pub const NOT_SUPPORTED: i64 = -1;
    /// Bad arguments.
    pub const INVALID_PARAMETERS: i64 = -2;
    /// CPU_ON of a CPU that is already on (or being powered on).
    pub const ALREADY_ON: i64 = -4;
}

use crate::cpu_power::CpuPower;

/// What the board must do for a firmware call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciAction {
    /// Put this value in x0 and continue after the HVC.
    Return(i64),
    /// Power on CPU `cpu` at `entry` with `context` in x0 (the board's
    /// [`crate::cpu_power::CpuPowers::cpu_on`] gives the status).
    CpuOn {
        /// Index of the target CPU.
        cpu: usize,
        /// Entry point.
        entry: u64,
        /// Value for the target's x0.
        context: u64,
    },
    /// Stop the calling CPU.
    CpuOff,
    /// CPU_SUSPEND: wait for an interrupt as WFI does, then return
    /// success (every power state is entered as standby, which PSCI allows).
    Suspend,
    /// Power the machine off.
    SystemOff,
    /// Reset the machine.
    SystemReset,
}

/// Decodes a firmware call made with x0..x3 = `args`. `cpu_of_mpidr` maps an
/// MPIDR to a CPU index; `power_of` gives a CPU index's power state.
pub fn call(
    args: [u64; 4],
    cpu_of_mpidr: impl Fn(u64) -> Option<usize>,
    power_of: impl Fn(usize) -> CpuPower,
) -> PsciAction {
    use status::*;
    let function = args[0] as u32;
    // SMC32 calls take 32-bit arguments.
    let arg = |i: usize| {
        if function & 0x4000_0000 == 0 {
            args[i] & 0xffff_ffff
        } else {
            args[i]
        }
    };
    PsciAction::Return(match function {
        id::SMCCC_VERSION => 0x1_0001,
        // No Spectre workarounds are needed (ID_AA64PFR0_EL1.CSV2 = 1).
        id::SMCCC_ARCH_FEATURES => NOT_SUPPORTED,
        id::PSCI_VERSION => 0x1_0000,
        id::PSCI_FEATURES => match arg(1) as u32 {
            id::PSCI_VERSION
            | id::CPU_SUSPEND_32
            | id::CPU_SUSPEND_64
            | id::CPU_OFF
            | id::CPU_ON_32
            | id::CPU_ON_64
            | id::AFFINITY_INFO_32
            | id::AFFINITY_INFO_64
            | id::MIGRATE_INFO_TYPE
            | id::SYSTEM_OFF
            | id::SYSTEM_RESET
            | id::PSCI_FEATURES
            | id::SMCCC_VERSION => SUCCESS,
            _ => NOT_SUPPORTED,
        },
        id::CPU_ON_32 | id::CPU_ON_64 => match cpu_of_mpidr(arg(1)) {
            None => INVALID_PARAMETERS,
            Some(cpu) => {
                return PsciAction::CpuOn {
                    cpu,
                    entry: arg(2),
                    context: arg(3),
                }
            }
        },
        id::AFFINITY_INFO_32 | id::AFFINITY_INFO_64 => {
            if arg(2) != 0 {
                INVALID_PARAMETERS
            } else {
                match cpu_of_mpidr(arg(1)) {
                    None => INVALID_PARAMETERS,
                    Some(cpu) => match power_of(cpu) {
                        CpuPower::On => 0,
                        CpuPower::Off => 1,
                        CpuPower::OnPending { .. } => 2,
                    },
                }
            }
        }
        // "Trusted OS not present or does not require migration".
        id::MIGRATE_INFO_TYPE => 2,
        id::CPU_OFF => return PsciAction::CpuOff,
        id::SYSTEM_OFF => return PsciAction::SystemOff,
        id::SYSTEM_RESET => return PsciAction::SystemReset,
        id::CPU_SUSPEND_32 | id::CPU_SUSPEND_64 => return PsciAction::Suspend,
        _ => NOT_SUPPORTED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_cpu(args: [u64; 4]) -> PsciAction {
        call(args, |m| (m == 0).then_some(0), |_| CpuPower::On)
    }

    #[test]
    fn discovery_and_power() {
        assert_eq!(
            one_cpu([0x8400_0000, 0, 0, 0]),
            PsciAction::Return(0x1_0000)
        );
        assert_eq!(
            one_cpu([0x8400_000a, 0xc400_0003, 0, 0]),
            PsciAction::Return(0)
        );
        assert_eq!(
            one_cpu([0x8400_000a, 0x8400_0001, 0, 0]),
            PsciAction::Return(0)
        );
        assert_eq!(
            one_cpu([0x8400_000a, 0x8400_0005, 0, 0]),
            PsciAction::Return(-1)
        );
        assert_eq!(one_cpu([0xc400_0001, 0, 0, 0]), PsciAction::Suspend);
        assert_eq!(one_cpu([0x8400_0008, 0, 0, 0]), PsciAction::SystemOff);
        assert_eq!(one_cpu([0x8400_0009, 0, 0, 0]), PsciAction::SystemReset);

        assert_eq!(
            one_cpu([0xc400_0003, 7, 0x4000_0000, 0]),
            PsciAction::Return(-2)
        );
        assert_eq!(one_cpu([0x8400_0006, 0, 0, 0]), PsciAction::Return(2));
        assert_eq!(one_cpu([0x1234, 0, 0, 0]), PsciAction::Return(-1));
        let power = |c| {
            if c == 0 {
                CpuPower::On
            } else {
                CpuPower::Off
            }
        };
        let two = call(
            [0xc400_0003, 1, 0x4008_0000, 9],
            |m| (m < 2).then_some(m as usize),
            power,
        );
        let affinity = |m| {
            call(
                [0xc400_0004, m, 0, 0],
                |m| (m < 2).then_some(m as usize),
                power,
            )
        };
        assert_eq!(affinity(0), PsciAction::Return(0));
        assert_eq!(affinity(1), PsciAction::Return(1));
        assert_eq!(affinity(5), PsciAction::Return(-2));
        assert_eq!(
            two,
            PsciAction::CpuOn {
                cpu: 1,
                entry: 0x4008_0000,
                context: 9
            }
        );
    }
}
