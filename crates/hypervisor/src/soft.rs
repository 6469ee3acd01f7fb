//! [`SoftVcpu`]: a vCPU on our own AArch64 CPU, with the board's device
//! models as its interrupt controller and timers.

use std::sync::Arc;
use std::time::Duration;

use a64::{Cpu, Domain, Exit, Signals};
use board::Board;

use crate::{CoreRegs, Vcpu, VcpuExit, VcpuHandle};

/// Most guest instructions between checks of timers and power state.
const SLICE: u64 = 200_000;
/// Fewest instructions a slice sized by a timer deadline runs.
const MIN_SLICE: u64 = 1_000;
/// First guess of guest instructions per counter tick (~300 MIPS at 62.5 MHz).
const INITIAL_RATE: f64 = 5.0;
/// How long [`VcpuHandle::drop_cached_translations`] waits (a vCPU reaches
/// a block boundary far sooner; this only bounds a VMM bug).
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// The software backend's part of one VM: its board and the domain its
/// vCPUs share (code one vCPU changes is dropped by all of them; TLB
/// maintenance and events reach all of them). It makes the VM's vCPUs, as
/// a KVM VM file descriptor makes its vCPUs.
pub struct SoftVm {
    board: Arc<Board>,
    domain: Arc<Domain>,
}

impl SoftVm {
    /// The backend for a VM on `board`.
    pub fn new(board: Arc<Board>) -> Self {
        SoftVm {
            board,
            domain: Domain::new(),
        }
    }

    /// vCPU `index` of the VM, at reset (EL1, MMU off, interrupts masked).
    pub fn create_vcpu(&self, index: usize) -> SoftVcpu {
        SoftVcpu::new(self.board.clone(), index, self.domain.clone())
    }
}

/// The software CPU behind the [`Vcpu`] seam.
pub struct SoftVcpu {
    cpu: Cpu,
    board: Arc<Board>,
    index: usize,
    handle: Arc<SoftHandle>,
    /// Guest instructions per counter tick while running, a moving average.
    rate: f64,
    /// The next timer deadline, as the board said after the last slice.
    deadline: Option<u64>,
    /// The features the guest was offered at boot, when it booted on
    /// another CPU (a restored state): carried into the next save.
    boot_id: Option<a64::IdRegisters>,
}

impl SoftVcpu {
    /// vCPU `index` of `board`, connected to the board's interrupt lines,
    /// in `domain` with the VM's other vCPUs, at reset.
    fn new(board: Arc<Board>, index: usize, domain: Arc<Domain>) -> Self {
        let mut cpu = Cpu::new_system(board.mpidr(index));
        cpu.join_domain(domain);
        cpu.set_counter_offset(board.counter_offset());
        board.connect_cpu(index, cpu.signals());
        let handle = Arc::new(SoftHandle {
            signals: cpu.signals(),
        });
        SoftVcpu {
            cpu,
            board,
            index,
            handle,
            rate: INITIAL_RATE,
            deadline: None,
            boot_id: None,
        }
    }

    /// How many instructions to run before looking at the timers again: a
    /// full slice, or — when a timer is due sooner — half the instructions
    /// the guest is expected to retire until its deadline (so the slice
    /// ends before it, and the next one is sized again), never fewer than
    /// [`MIN_SLICE`]. A busy guest so takes its timer interrupt within a
    /// bounded number of instructions of the deadline, with no thread of
    /// its own and no cost while idle.
    fn slice(&self, now: u64) -> u64 {
        match self.deadline {
            Some(deadline) => {
                let expected = deadline.saturating_sub(now) as f64 * self.rate * 0.5;
                (expected as u64).clamp(MIN_SLICE, SLICE)
            }
            None => SLICE,
        }
    }

    /// Folds one slice's pace into the moving average.
    fn learn_rate(&mut self, insns: u64, ticks: u64) {
        if insns >= MIN_SLICE && ticks > 0 {
            let measured = insns as f64 / ticks as f64;
            self.rate = 0.75 * self.rate + 0.25 * measured;
        }
    }

    fn fatal(&self, why: &str) -> VcpuExit {
        VcpuExit::Fatal(self.report(why))
    }
}

impl Vcpu for SoftVcpu {
    fn run(&mut self) -> VcpuExit {
        let start = self.board.counter();
        let retired = self.cpu.insns_retired;
        let budget = self.slice(start);
        self.cpu.set_wake_deadline(self.deadline);
        let exit = {
            let mut bus = self.board.bus(self.index);
            self.cpu.run(&mut bus, budget)
        };
        let ticks = self.board.counter().wrapping_sub(start);
        self.learn_rate(self.cpu.insns_retired - retired, ticks);
        // A timer write during the slice ended it (the board kicks the CPU),
        // so this deadline is current for the next one.
        self.deadline = self.board.sync_timers(self.index);
        match exit {
            Exit::Budget | Exit::Stopped => VcpuExit::Yield,
            Exit::Wfi => {
                self.cpu.pc = self.cpu.pc.wrapping_add(4);
                VcpuExit::Wfi
            }
            Exit::Hvc(_) | Exit::Smc(_) => {
                self.cpu.pc = self.cpu.pc.wrapping_add(4);
                VcpuExit::FirmwareCall
            }
            Exit::ExceptionLoop => self.fatal(
                "the guest takes exceptions in a loop without executing anything (broken vector table?)",
            ),
            other => self.fatal(&format!("unexpected CPU exit {other:?}")),
        }
    }

    fn regs(&self) -> CoreRegs {
        let c = &self.cpu;
        let mut x = [0u64; 31];
        for (i, r) in x.iter_mut().enumerate() {
            *r = c.xreg(i);
        }
        CoreRegs {
            x,
            sp: c.sp,
            pc: c.pc,
            pstate: c.nzcv as u64
                | c.sys.daif as u64
                | (c.sys.pan as u64) << 22
                | (c.sys.el as u64) << 2
                | c.sys.spsel as u64,
        }
    }

    /// Sets X0..X30, SP, PC, NZCV and DAIF. The exception level and stack
    /// selection stay as they are: changing them moves banked registers,
    /// which is whole-state restore's job, not the vCPU loop's.
    fn set_regs(&mut self, regs: &CoreRegs) {
        for (i, &r) in regs.x.iter().enumerate() {
            self.cpu.set_xreg(i, r);
        }
        self.cpu.sp = regs.sp;
        self.cpu.pc = regs.pc;
        self.cpu.nzcv = regs.pstate as u32 & 0xf000_0000;
        self.cpu.sys.daif = regs.pstate as u32 & 0x3c0;
    }

    fn state(&self) -> Result<crate::VcpuState, String> {
        let mut s = self.cpu.state();
        s.id = self.boot_id.unwrap_or(s.id);
        Ok(s)
    }

    fn set_state(&mut self, state: &crate::VcpuState) -> Result<(), String> {
        let mpidr = self.board.mpidr(self.index) | 1 << 31;
        if !state.system || state.sys.mpidr_el1 != mpidr {
            return Err(format!(
                "the saved vCPU (MPIDR {:#x}) is not vCPU {} (MPIDR {mpidr:#x})",
                state.sys.mpidr_el1, self.index
            ));
        }
        let missing = state.id.missing_from(&self.cpu.id_registers());
        if !missing.is_empty() {
            return Err(format!(
                "the guest cannot continue on the software CPU, which lacks features it was offered at boot: {}",
                missing.join(", ")
            ));
        }
        self.cpu.set_state(state);
        self.cpu.set_counter_offset(self.board.counter_offset());
        self.deadline = None;
        self.boot_id = Some(state.id);
        Ok(())
    }

    fn handle(&self) -> Arc<dyn VcpuHandle> {
        self.handle.clone()
    }

    fn power_on(&mut self, entry: u64, context: u64) -> Result<(), String> {
        self.cpu.power_on(entry, context);
        self.deadline = None;
        Ok(())
    }

    fn report(&self, why: &str) -> String {
        let (c, s) = (&self.cpu, &self.cpu.sys);
        format!(
            "{why}\n  pc={:#018x} sp={:#018x} EL{} daif={:#x}\n  ESR_EL1={:#x} FAR_EL1={:#x} ELR_EL1={:#x} VBAR_EL1={:#x} SCTLR_EL1={:#x}\n  instructions retired: {}, exceptions taken: {}",
            c.pc,
            c.sp,
            s.el,
            s.daif,
            s.esr_el1,
            s.far_el1,
            s.elr_el1,
            s.vbar_el1,
            s.sctlr_el1,
            c.insns_retired,
            c.exceptions_taken
        )
    }

    fn counters(&self) -> (u64, u64) {
        (self.cpu.insns_retired, self.cpu.exceptions_taken)
    }
}

/// The other threads' side of a [`SoftVcpu`]: its CPU's signals (see
/// [`Signals`] for the translation handshake).
struct SoftHandle {
    signals: Arc<Signals>,
}

impl VcpuHandle for SoftHandle {
    fn kick(&self) {
        self.signals.request_stop();
    }

    fn drop_cached_translations(&self) -> Result<(), String> {
        self.signals.drop_translations(FLUSH_WAIT)
    }
}
