//! Runs test cases on Pocketvisor's CPU with the same memory layout as the harness.

use a64::{Access, Bus, Cpu, Exit, FlatMemory, PageLookup};

use crate::protocol::*;

/// Linux signal numbers the harness reports.
pub const SIGILL: u32 = 4;
/// Trace/breakpoint trap.
pub const SIGTRAP: u32 = 5;
/// Bus error (alignment).
pub const SIGBUS: u32 = 7;
/// Segmentation fault.
pub const SIGSEGV: u32 = 11;

/// The two regions of the test address space: scratch memory and the code page.
struct TestBus {
    scratch: FlatMemory,
    code: FlatMemory,
}

// SAFETY: delegates to two FlatMemory regions, whose pointers are stable.
unsafe impl Bus for TestBus {
    fn page(&mut self, addr: u64, access: Access) -> PageLookup {
        if addr >= CODE_ADDR {
            self.code.page(addr, access)
        } else {
            self.scratch.page(addr, access)
        }
    }
}

/// Our side of the differential test: one CPU reused across cases.
pub struct OurSide {
    cpu: Cpu,
    bus: TestBus,
}

impl OurSide {
    /// Builds the address space; `code_image` is the harness's initial code page.
    pub fn new(code_image: &[u8]) -> OurSide {
        let mut code = FlatMemory::new(CODE_ADDR, CODE_PAGE);
        code.load(CODE_ADDR, code_image);
        let mut cpu = Cpu::new();
        // Linux user space runs with top-byte-ignore for data addresses.
        cpu.tbi0 = true;
        // Each case runs its instruction once: compile it anyway, so the
        // comparison covers the compiled code, not just the interpreter.
        cpu.compile_on_first_run();
        OurSide {
            cpu,
            bus: TestBus {
                scratch: FlatMemory::new(SCRATCH_ADDR, SCRATCH_SIZE),
                code,
            },
        }
    }

    /// Runs one case and reports it the way the harness would.
    pub fn run(&mut self, case: &Case) -> Outcome {
        fill_scratch(case.mem_seed, self.bus.scratch.bytes_mut());
        let cpu = &mut self.cpu;
        let mut state = Vec::with_capacity(REGS_BYTES);
        case.regs.to_bytes(&mut state);
        // Write through the CPU so that cached blocks of the old instruction are dropped.
        let mut code = case.insn.to_le_bytes().to_vec();
        code.extend_from_slice(&case.insn2.to_le_bytes());
        cpu.write_bytes(&mut self.bus, CODE_ADDR + STATE_OFF, &state)
            .expect("code page is mapped");
        cpu.write_bytes(&mut self.bus, CODE_ADDR + INSN_OFF, &code)
            .expect("code page is mapped");

        let r = &case.regs;
        for (i, x) in r.x.iter().enumerate() {
            cpu.set_xreg(i, *x);
        }
        cpu.sp = r.sp;
        cpu.nzcv = r.nzcv as u32;
        cpu.fpcr = r.fpcr as u32;
        cpu.fpsr = r.fpsr as u32;
        cpu.tpidr_el0 = r.tpidr;
        cpu.v = r.v;
        cpu.clear_exclusive();
        cpu.pc = CODE_ADDR + INSN_OFF;

        let exit = cpu.run(&mut self.bus, 16);
        let (sig, fault_addr) = match exit {
            Exit::Brk(_) => (SIGTRAP, 0),
            Exit::Undefined(_) | Exit::Hvc(_) | Exit::Smc(_) | Exit::Hlt(_) | Exit::Svc(_) => {
                (SIGILL, 0)
            }
            Exit::DataAbort { addr, .. } => (SIGSEGV, addr),
            Exit::InsnAbort { addr } => (SIGSEGV, addr),
            Exit::Alignment { addr } => (SIGBUS, addr),
            Exit::PcAlignment => (SIGBUS, cpu.pc),
            Exit::SpAlignment => (SIGBUS, cpu.sp),
            Exit::Budget => (0, 0),
            // System-level exits never happen in user-mode emulation.
            other => panic!("unexpected exit at user level: {other:?}"),
        };
        let mut regs = Regs::default();
        for (i, x) in regs.x.iter_mut().enumerate() {
            *x = cpu.xreg(i);
        }
        regs.sp = cpu.sp;
        regs.nzcv = cpu.nzcv as u64;
        regs.fpcr = cpu.fpcr as u64;
        regs.fpsr = cpu.fpsr as u64;
        regs.tpidr = cpu.tpidr_el0;
        regs.v = cpu.v;
        Outcome {
            sig,
            pc: cpu.pc,
            fault_addr,
            mem_hash: hash_scratch(self.bus.scratch.bytes()),
            regs,
        }
    }
}
