//! The vCPU loop: run guest code, service what it asks of the board.

use std::time::Duration;

use a64::{Cpu, Exit};
use board::psci::{self, PsciAction};
use board::{Board, Power};

use crate::dirty::FlushSync;

/// Guest instructions between checks of timers and power state.
const SLICE: u64 = 200_000;
/// Longest sleep in WFI before re-checking the machine state.
const MAX_WFI_SLEEP: Duration = Duration::from_millis(100);

/// How a vCPU stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VcpuEnd {
    /// The machine was powered off, reset, or stopped from outside.
    Power(Power),
    /// The guest cannot continue: the report says why.
    Crashed(String),
}

/// Runs CPU `index` until the machine stops; `sync` is its side of the
/// dirty log's TLB-flush handshake.
pub fn run(board: &Board, cpu: &mut Cpu, index: usize, sync: &FlushSync) -> VcpuEnd {
    let mut bus = board.bus(index);
    loop {
        sync.enter_guest(cpu);
        let exit = cpu.run(&mut bus, SLICE);
        sync.leave_guest(cpu);
        board.sync_timers(index);
        match exit {
            Exit::Budget | Exit::Stopped => {}
            Exit::Wfi => {
                cpu.pc = cpu.pc.wrapping_add(4);
                board.wait_for_interrupt(index, MAX_WFI_SLEEP);
            }
            Exit::Hvc(_) | Exit::Smc(_) => {
                cpu.pc = cpu.pc.wrapping_add(4);
                firmware_call(board, cpu);
            }
            Exit::ExceptionLoop => {
                let report = crash_report(cpu, "the guest takes exceptions in a loop without executing anything (broken vector table?)");
                board.crash(report.clone());
                return VcpuEnd::Crashed(report);
            }
            other => {
                let report = crash_report(cpu, &format!("unexpected CPU exit {other:?}"));
                board.crash(report.clone());
                return VcpuEnd::Crashed(report);
            }
        }
        if board.power() != Power::On {
            return VcpuEnd::Power(board.power());
        }
    }
}

fn firmware_call(board: &Board, cpu: &mut Cpu) {
    let args = [cpu.xreg(0), cpu.xreg(1), cpu.xreg(2), cpu.xreg(3)];
    let action = psci::call(args, |m| board.cpu_of_mpidr(m), |c| c == 0);
    match action {
        PsciAction::Return(v) => cpu.set_xreg(0, v as u64),
        PsciAction::SystemOff => board.set_power(Power::Off),
        PsciAction::SystemReset => board.set_power(Power::Reset),
        // Secondary CPUs come with SMP support; until then there are none to start.
        PsciAction::CpuOn { .. } => cpu.set_xreg(0, psci::status::INVALID_PARAMETERS as u64),
        PsciAction::CpuOff => board.set_power(Power::Off),
    }
}

/// A short description of the CPU state for a crash report.
pub fn crash_report(cpu: &Cpu, why: &str) -> String {
    let s = &cpu.sys;
    format!(
        "{why}\n  pc={:#018x} sp={:#018x} EL{} daif={:#x}\n  ESR_EL1={:#x} FAR_EL1={:#x} ELR_EL1={:#x} VBAR_EL1={:#x} SCTLR_EL1={:#x}\n  instructions retired: {}, exceptions taken: {}",
        cpu.pc,
        cpu.sp,
        s.el,
        s.daif,
        s.esr_el1,
        s.far_el1,
        s.elr_el1,
        s.vbar_el1,
        s.sctlr_el1,
        cpu.insns_retired,
        cpu.exceptions_taken
    )
}
