//! The vCPU loop: run guest code through the [`Vcpu`] seam and service
//! what it asks of the board. Nothing here knows which backend runs it.

use std::time::Duration;

use board::psci::{self, PsciAction};
use board::{Board, Power};
use hypervisor::{Vcpu, VcpuExit};

use crate::control::{SharedVcpu, VcpuCounters};
use crate::quota::{CpuQuota, Throttle};
use crate::vm::lock_vcpu;

/// Longest sleep in WFI before re-checking the machine state (interrupts,
/// power changes and pauses wake a sleeping vCPU at once; an idle guest
/// should cost its host as few wakeups as possible).
const MAX_WFI_SLEEP: Duration = Duration::from_millis(1000);

/// How a vCPU stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VcpuEnd {
    /// The machine was powered off, reset, or stopped from outside.
    Power(Power),
    /// The guest cannot continue: the report says why.
    Crashed(String),
}

/// Runs vCPU `index` until the machine stops, parking whenever the board
/// is paused. The vCPU is locked while it runs guest code and unlocked
/// while it parks or sleeps, so a paused VM's state can be saved.
pub fn run(
    board: &Board,
    shared: &SharedVcpu,
    counters: &VcpuCounters,
    quota: &CpuQuota,
    index: usize,
) -> VcpuEnd {
    let mut throttle = Throttle::new(quota.clone());
    loop {
        throttle.charge(|| board.power() == Power::On && !board.pause.paused());
        board.pause.park_while_paused(|| board.power() == Power::On);
        let mut vcpu = lock_vcpu(shared);
        let exit = vcpu.run();
        counters.publish(vcpu.as_ref());
        match exit {
            VcpuExit::Yield => {}
            VcpuExit::Wfi => {
                drop(vcpu);
                board.wait_for_interrupt(index, MAX_WFI_SLEEP)
            }
            VcpuExit::FirmwareCall => firmware_call(board, vcpu.as_mut()),
            VcpuExit::PowerOff => board.set_power(Power::Off),
            VcpuExit::Reset => board.set_power(Power::Reset),
            VcpuExit::Fatal(report) => {
                board.crash(report.clone());
                return VcpuEnd::Crashed(report);
            }
        }
        if board.power() != Power::On {
            return VcpuEnd::Power(board.power());
        }
    }
}

fn firmware_call(board: &Board, vcpu: &mut dyn Vcpu) {
    let mut regs = vcpu.regs();
    let args = [regs.x[0], regs.x[1], regs.x[2], regs.x[3]];
    let result = match psci::call(args, |m| board.cpu_of_mpidr(m), |c| c == 0) {
        PsciAction::Return(v) => v,
        // Secondary CPUs come with SMP support; until then there are none to start.
        PsciAction::CpuOn { .. } => psci::status::INVALID_PARAMETERS,
        PsciAction::SystemOff | PsciAction::CpuOff => return board.set_power(Power::Off),
        PsciAction::SystemReset => return board.set_power(Power::Reset),
    };
    regs.x[0] = result as u64;
    vcpu.set_regs(&regs);
}
