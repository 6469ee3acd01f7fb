//! `a64`: Pocketvisor's AArch64 CPU.
//!
//! * [`Cpu`] holds the architectural state and runs guest code with
//!   [`Cpu::run`], returning an [`Exit`] whenever the embedder must act
//!   (system call, breakpoint, fault, undefined instruction, budget spent).
//! * Decoding is driven by declarative tables of encodings (see `decode` and
//!   the `insn` modules): each entry is a 32-bit pattern and a handler.
//! * Execution caches decoded basic blocks keyed by guest PC, invalidated when
//!   the guest writes to a page that holds cached code.
//! * Memory reaches the CPU only through the [`Bus`] trait and a software TLB.

mod addr_hash;
pub mod bus;
mod code;
mod cpu;
mod decode;
mod domain;
mod exec;
mod flat;
pub mod fp;
// Before `insn`: its tables use the `enc!` macros.
#[macro_use]
mod jit;
mod insn;
mod mem;
mod state;
mod system;
mod tlb;

pub use bus::{Access, Bus, PageLookup, PAGE_MASK, PAGE_SIZE};
pub use cpu::{Cpu, Exit, Features, Monitor};
pub use decode::{coverage_report, decode, EncodingInfo};
pub use domain::Domain;
pub use flat::FlatMemory;
pub use state::CpuState;
pub use system::id::IdRegisters;
pub use system::regs::{counter, COUNTER_HZ, FPCR_MASK, FPSR_MASK};
pub use system::{Signals, SysRegs};
