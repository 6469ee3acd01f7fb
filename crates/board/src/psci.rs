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
    /// CPU_ON of a CPU that is already on.
    pub const ALREADY_ON: i64 = -4;
}

/// What the board must do for a firmware call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciAction {
    /// Put this value in x0 and continue after the HVC.
    Return(i64),
    /// Power on CPU `cpu` at `entry` with `context` in x0.
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
    /// Power the machine off.
    SystemOff,
    /// Reset the machine.
    SystemReset,
}

/// Decodes a firmware call made with x0..x3 = `args`. `cpu_of_mpidr` maps an
/// MPIDR to a CPU index; `is_on` tells whether a CPU index is running.
pub fn call(
    args: [u64; 4],
    cpu_of_mpidr: impl Fn(u64) -> Option<usize>,
    is_on: impl Fn(usize) -> bool,
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
            Some(cpu) if is_on(cpu) => ALREADY_ON,
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
                    Some(cpu) => !is_on(cpu) as i64,
                }
            }
        }
        // "Trusted OS not present or does not require migration".
        id::MIGRATE_INFO_TYPE => 2,
        id::CPU_OFF => return PsciAction::CpuOff,
        id::SYSTEM_OFF => return PsciAction::SystemOff,
        id::SYSTEM_RESET => return PsciAction::SystemReset,
        id::CPU_SUSPEND_32 | id::CPU_SUSPEND_64 => NOT_SUPPORTED,
        _ => NOT_SUPPORTED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_cpu(args: [u64; 4]) -> PsciAction {
        call(args, |m| (m == 0).then_some(0), |c| c == 0)
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
            PsciAction::Return(-1)
        );
        assert_eq!(one_cpu([0x8400_0008, 0, 0, 0]), PsciAction::SystemOff);
        assert_eq!(one_cpu([0x8400_0009, 0, 0, 0]), PsciAction::SystemReset);
        assert_eq!(
            one_cpu([0xc400_0003, 0, 0x4000_0000, 0]),
            PsciAction::Return(-4)
        );
        assert_eq!(
            one_cpu([0xc400_0003, 7, 0x4000_0000, 0]),
            PsciAction::Return(-2)
        );
        assert_eq!(one_cpu([0x8400_0006, 0, 0, 0]), PsciAction::Return(2));
        assert_eq!(one_cpu([0x1234, 0, 0, 0]), PsciAction::Return(-1));
        let two = call(
            [0xc400_0003, 1, 0x4008_0000, 9],
            |m| (m < 2).then_some(m as usize),
            |c| c == 0,
        );
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
