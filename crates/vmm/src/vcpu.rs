//! The vCPU loop: run guest code through the [`Vcpu`] seam and service
//! what it asks of the board. Nothing here knows which backend runs it.
//!
//! Each vCPU has a thread of its own running [`run`]: while its CPU is
//! powered off (PSCI) the thread waits for a CPU_ON; once on, it runs the
//! vCPU until the CPU turns itself off again or the machine stops. A
//! backend that serves PSCI itself (KVM) keeps its powered-off vCPUs
//! waiting inside its own run, so their threads run it from the start.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use board::psci::{self, status, PsciAction};
use board::{Board, CpuPower, Power};
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

/// What one vCPU's thread needs: the board, its vCPU and counters, the
/// VM's CPU quota and the count of vCPU loops running guest code.
pub(crate) struct VcpuThread<'a> {
    pub board: &'a Board,
    pub vcpu: &'a SharedVcpu,
    pub counters: &'a VcpuCounters,
    pub quota: &'a CpuQuota,
    pub running: &'a AtomicUsize,
    pub index: usize,
}

/// How a stretch of running a powered-on vCPU ended.
enum Stint {
    /// The CPU turned itself off (PSCI CPU_OFF), or a restored state says
    /// it is off or pending: wait for power again.
    PowerChanged,
    /// The machine stopped.
    End(VcpuEnd),
}

/// Runs vCPU `t.index` until the machine stops: waits while the CPU is
/// powered off, powers it on at the entry point a CPU_ON gave, and runs
/// it, parking whenever the board is paused. The vCPU is locked while it
/// runs guest code and unlocked while it parks or sleeps, so a paused VM's
/// state can be saved. It counts in `running` while its CPU is on.
pub(crate) fn run(t: &VcpuThread<'_>) -> VcpuEnd {
    let board = t.board;
    let kept_by_backend = lock_vcpu(t.vcpu).power_state();
    match kept_by_backend {
        Ok(Some(_)) => return run_backend_powered(t),
        Ok(None) => {}
        Err(e) => {
            let report = format!("vCPU {}: its power state cannot be read: {e}", t.index);
            board.crash(report.clone());
            return VcpuEnd::Crashed(report);
        }
    }
    loop {
        let on = board
            .cpu_power
            .wait_until_on(t.index, || board.power() == Power::On);
        let Some(state) = on else {
            return VcpuEnd::Power(board.power());
        };
        t.running.fetch_add(1, Ordering::AcqRel);
        let stint = match state {
            CpuPower::OnPending { entry, context } => power_on(t, entry, context),
            _ => Ok(()),
        }
        .map_or_else(Stint::End, |()| run_powered(t, true));
        t.running.fetch_sub(1, Ordering::AcqRel);
        match stint {
            Stint::PowerChanged => continue,
            Stint::End(end) => return end,
        }
    }
}

/// Runs a vCPU whose backend serves PSCI itself (KVM): from the start,
/// whatever its power state — the backend keeps a powered-off vCPU
/// waiting inside its run until a CPU_ON — until the machine stops.
fn run_backend_powered(t: &VcpuThread<'_>) -> VcpuEnd {
    t.running.fetch_add(1, Ordering::AcqRel);
    let end = loop {
        if let Stint::End(end) = run_powered(t, false) {
            break end;
        }
    };
    t.running.fetch_sub(1, Ordering::AcqRel);
    end
}

/// Resets the vCPU at a CPU_ON's entry point and marks its CPU on.
fn power_on(t: &VcpuThread<'_>, entry: u64, context: u64) -> Result<(), VcpuEnd> {
    lock_vcpu(t.vcpu).power_on(entry, context).map_err(|e| {
        let report = format!("vCPU {} cannot be powered on: {e}", t.index);
        t.board.crash(report.clone());
        VcpuEnd::Crashed(report)
    })?;
    t.board.cpu_power.set_on(t.index);
    Ok(())
}

/// Runs the powered-on vCPU until its power state changes or the machine
/// stops (`board_power`: the board's firmware keeps the power state, so a
/// restored state may have turned the CPU off).
fn run_powered(t: &VcpuThread<'_>, board_power: bool) -> Stint {
    let (board, index) = (t.board, t.index);
    let mut throttle = Throttle::new(t.quota.clone());
    loop {
        throttle.charge(|| board.power() == Power::On && !board.pause.paused());
        board.pause.park_while_paused(|| board.power() == Power::On);
        if board.power() != Power::On {
            return Stint::End(VcpuEnd::Power(board.power()));
        }
        // A state restored while parked may have turned this CPU off.
        if board_power && board.cpu_power.get(index) != CpuPower::On {
            return Stint::PowerChanged;
        }
        let mut vcpu = lock_vcpu(t.vcpu);
        let exit = vcpu.run();
        t.counters.publish(vcpu.as_ref());
        match exit {
            VcpuExit::Yield => {}
            VcpuExit::Wfi => {
                drop(vcpu);
                board.wait_for_interrupt(index, MAX_WFI_SLEEP)
            }
            VcpuExit::FirmwareCall => {
                if firmware_call(board, vcpu.as_mut(), index) == Call::TurnedOff {
                    return Stint::PowerChanged;
                }
            }
            VcpuExit::PowerOff => board.set_power(Power::Off),
            VcpuExit::Reset => board.set_power(Power::Reset),
            VcpuExit::Fatal(report) => {
                board.crash(report.clone());
                return Stint::End(VcpuEnd::Crashed(report));
            }
        }
        if board.power() != Power::On {
            return Stint::End(VcpuEnd::Power(board.power()));
        }
    }
}

/// What a firmware call did to the calling CPU.
#[derive(PartialEq, Eq)]
enum Call {
    /// It returned to the guest (or the machine's power changed).
    Returned,
    /// The CPU turned itself off.
    TurnedOff,
}

fn firmware_call(board: &Board, vcpu: &mut dyn Vcpu, index: usize) -> Call {
    let mut regs = vcpu.regs();
    let args = [regs.x[0], regs.x[1], regs.x[2], regs.x[3]];
    let power = &board.cpu_power;
    let result = match psci::call(args, |m| board.cpu_of_mpidr(m), |c| power.get(c)) {
        PsciAction::Return(v) => v,
        PsciAction::CpuOn {
            cpu,
            entry,
            context,
        } => power.cpu_on(cpu, entry, context),
        PsciAction::Suspend => {
            board.wait_for_interrupt(index, MAX_WFI_SLEEP);
            status::SUCCESS
        }
        PsciAction::CpuOff => {
            if power.cpu_off(index) {
                // No CPU is left to run anything.
                board.set_power(Power::Off);
            }
            return Call::TurnedOff;
        }
        PsciAction::SystemOff => {
            board.set_power(Power::Off);
            return Call::Returned;
        }
        PsciAction::SystemReset => {
            board.set_power(Power::Reset);
            return Call::Returned;
        }
    };
    regs.x[0] = result as u64;
    vcpu.set_regs(&regs);
    Call::Returned
}
