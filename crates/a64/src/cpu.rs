//! Architectural state of one AArch64 processing element and its public API.

use crate::addr_hash::AddrSet;
use std::sync::Arc;
use std::time::Duration;

use crate::code::Invalidation;
use crate::domain::Domain;
use crate::exec::BlockCache;
use crate::system::signals::TlbOp;
use crate::system::{Signals, SysRegs};
use crate::tlb::Tlb;

/// Why [`Cpu::run`] returned. In every case `cpu.pc` holds the address of
/// the instruction concerned (for `Svc`, the SVC itself: resume at `pc + 4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The instruction budget given to `run` was used up.
    Budget,
    /// `SVC #imm` (a system call in user-mode emulation).
    Svc(u16),
    /// `HVC #imm`.
    Hvc(u16),
    /// `SMC #imm`.
    Smc(u16),
    /// `BRK #imm`.
    Brk(u16),
    /// `HLT #imm`.
    Hlt(u16),
    /// An unallocated or unimplemented encoding.
    Undefined(u32),
    /// A data access faulted at `addr`.
    DataAbort {
        /// The faulting virtual address.
        addr: u64,
        /// Whether the access was a store.
        write: bool,
    },
    /// An instruction fetch faulted at `addr`.
    InsnAbort {
        /// The faulting virtual address.
        addr: u64,
    },
    /// A misaligned exclusive/atomic/acquire-release access at `addr`.
    Alignment {
        /// The misaligned virtual address.
        addr: u64,
    },
    /// The PC was not 4-byte aligned when fetching.
    PcAlignment,
    /// The SP was misaligned for an SP-based access (only when checking is on).
    SpAlignment,
    /// A system register access or system instruction trapped to EL1 (EC 0x18).
    /// System level only; taken as a guest exception, never returned.
    SysRegTrap(u32),
    /// An FP/SIMD instruction trapped by CPACR_EL1.FPEN. System level only.
    FpTrap,
    /// WFI/WFE at EL0 trapped by SCTLR_EL1.nTWI/nTWE (EC 0x01). System level only.
    WfxTrap {
        /// Whether the instruction was WFE (else WFI).
        wfe: bool,
    },
    /// An illegal exception return. System level only.
    IllegalState,
    /// WFI with no interrupt pending: the embedder should sleep until one is.
    /// `pc` is at the WFI; resume at `pc + 4`.
    Wfi,
    /// [`Signals::request_stop`] was called. `pc` is the next instruction.
    Stopped,
    /// The guest keeps taking exceptions without executing any instruction
    /// (for example its vector table is unmapped): it can make no progress.
    ExceptionLoop,
}

/// Optional architecture features the CPU implements. Only these may be
/// advertised to guests (HWCAP, ID registers).
#[derive(Clone, Copy, Debug)]
pub struct Features {
    /// FEAT_LSE: CAS, CASP, SWP, LDADD and friends.
    pub lse: bool,
    /// FEAT_CRC32: the CRC32/CRC32C instructions.
    pub crc32: bool,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            lse: true,
            crc32: true,
        }
    }
}

/// State of the exclusive monitor used by LDXR/STXR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Monitor {
    /// Address marked by the last load-exclusive, if any.
    pub addr: Option<u64>,
    /// Size in bytes of the marked access (pairs: both registers).
    pub size: u8,
    /// Value loaded (low and high halves for pairs), compared on store.
    pub value: u128,
}

/// One AArch64 processing element.
pub struct Cpu {
    /// General registers X0..X30; index 31 always reads as zero (XZR).
    pub(crate) x: [u64; 32],
    /// The stack pointer.
    pub sp: u64,
    /// The program counter.
    pub pc: u64,
    /// Condition flags in PSTATE layout: N=bit 31, Z=30, C=29, V=28.
    pub nzcv: u32,
    /// SIMD&FP registers V0..V31, lane 0 in the low bits.
    pub v: [u128; 32],
    /// Floating-point control register.
    pub fpcr: u32,
    /// Floating-point status register (cumulative exception flags, QC).
    pub fpsr: u32,
    /// EL0 read/write software thread ID register.
    pub tpidr_el0: u64,
    /// EL0 read-only software thread ID register.
    pub tpidrro_el0: u64,
    /// Implemented optional features.
    pub features: Features,
    /// Top-byte-ignore for data addresses whose bit 55 is clear (TCR_EL1.TBI0).
    /// Linux enables it for user space; off at reset.
    pub tbi0: bool,
    /// Top-byte-ignore for data addresses whose bit 55 is set (TCR_EL1.TBI1).
    pub tbi1: bool,
    /// Whether the system level (EL1, MMU, exceptions to the guest) is on;
    /// off for user-mode emulation.
    pub(crate) system: bool,
    /// EL1 state (meaningful when `system` is set).
    pub sys: SysRegs,
    /// First entry of the TLB for the current privilege.
    pub(crate) tlb_base: usize,
    /// Fault status code (ESR DFSC/IFSC) of the last abort raised.
    pub(crate) fault_status: u8,
    /// Interrupt lines and stop requests from other threads.
    pub(crate) signals: Arc<Signals>,
    /// Exceptions taken since creation (system level).
    pub exceptions_taken: u64,
    /// Set by IC IALLU: drop every decoded block at the next block boundary.
    pub(crate) code_flush_all: bool,
    /// Whether cached blocks were decoded with FP/SIMD trapped (CPACR_EL1.FPEN).
    pub(crate) fp_blocks_trapped: bool,
    /// Instructions retired since creation.
    pub insns_retired: u64,
    /// Details for the exit being raised (set by handlers before `Err(Stop)`).
    pub(crate) exit: Exit,
    pub(crate) monitor: Monitor,
    /// Subtracted from the host counter to give this CPU's CNTVCT/CNTPCT
    /// (the VM's clock offset: a restored guest's counter continues).
    pub(crate) counter_offset: u64,
    pub(crate) tlb: Tlb,
    /// Host pages (address >> 12) that hold cached decoded code.
    pub(crate) code_pages: AddrSet<usize>,
    /// Host pages of cached code written since the last block boundary.
    pub(crate) dirty_code: Vec<usize>,
    /// The CPUs of the machine this CPU belongs to (itself alone, unless
    /// it joined another's domain).
    pub(crate) domain: Arc<Domain>,
    /// TLB maintenance this CPU asked of the others (`TLBI ...IS`), not yet
    /// known to be done: its next DSB waits for it.
    pub(crate) tlb_pending: Vec<(Arc<Signals>, u64)>,
    /// The host address of the granule the exclusive monitor is armed for
    /// (where WFE watches for another CPU's store); 0 when unknown.
    pub(crate) monitor_host: usize,
    /// The guest counter value by which `run` should return (the next timer
    /// deadline, as the embedder set it): WFE waits no longer.
    pub(crate) wake_at: Option<u64>,
    /// The number of the last machine-wide invalidation this CPU acted on.
    pub(crate) code_seen: u64,
    /// Scratch space of the block decoder (kept to avoid an allocation per block).
    pub(crate) decoded_insns: Vec<crate::decode::Insn>,
    /// The shims of the block decoded last, for the compiler.
    pub(crate) decoded_shims: Vec<crate::jit::Shim>,
    pub(crate) cache: BlockCache,
}

/// For each condition code, a 16-bit set of the NZCV values (bit index = NZCV) that satisfy it.
pub(crate) const CONDITIONS: [u16; 16] = {
    let mut t = [0u16; 16];
    let mut cond = 0;
    while cond < 16 {
        let mut flags = 0;
        while flags < 16 {
            let (n, z, c, v) = (
                flags & 8 != 0,
                flags & 4 != 0,
                flags & 2 != 0,
                flags & 1 != 0,
            );
            let base = match cond >> 1 {
                0 => z,
                1 => c,
                2 => n,
                3 => v,
                4 => c && !z,
                5 => n == v,
                6 => n == v && !z,
                _ => true,
            };
            let holds = if cond & 1 == 1 && cond != 15 {
                !base
            } else {
                base
            };
            if holds {
                t[cond] |= 1 << flags;
            }
            flags += 1;
        }
        cond += 1;
    }
    t
};

/// Marker error: execution of the current instruction stopped; the reason is in `Cpu::exit`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stop;

/// What an instruction handler returns.
pub(crate) type Step = Result<(), Stop>;

impl Default for Cpu {
    fn default() -> Self {
        Self::new()
    }
}

impl Cpu {
    /// A CPU with all registers zero and default features.
    pub fn new() -> Self {
        let signals = Arc::new(Signals::default());
        let domain = Domain::new();
        domain.join(&signals);
        Cpu {
            x: [0; 32],
            sp: 0,
            pc: 0,
            nzcv: 0,
            v: [0; 32],
            fpcr: 0,
            fpsr: 0,
            tpidr_el0: 0,
            tpidrro_el0: 0,
            features: Features::default(),
            tbi0: false,
            tbi1: false,
            system: false,
            sys: SysRegs::default(),
            tlb_base: 0,
            fault_status: 0,
            signals,
            exceptions_taken: 0,
            code_flush_all: false,
            fp_blocks_trapped: false,
            insns_retired: 0,
            exit: Exit::Budget,
            monitor: Monitor::default(),
            counter_offset: 0,
            tlb: Tlb::new(),
            code_pages: AddrSet::default(),
            decoded_insns: Vec::new(),
            decoded_shims: Vec::new(),
            dirty_code: Vec::new(),
            domain,
            tlb_pending: Vec::new(),
            monitor_host: 0,
            wake_at: None,
            code_seen: 0,
            cache: BlockCache::default(),
        }
    }

    /// A CPU at the system level, as after reset: EL1 using SP_EL1, interrupts
    /// masked, MMU off. `mpidr` is its MPIDR_EL1 affinity value (bit 31 is
    /// set automatically). Exceptions are taken to the guest's EL1 vectors.
    pub fn new_system(mpidr: u64) -> Self {
        let mut cpu = Cpu::new();
        cpu.system = true;
        cpu.sys = SysRegs::reset(mpidr | 1 << 31);
        cpu.update_mmu_index();
        cpu
    }

    /// The CPU's interrupt lines and stop request, shareable with other threads.
    pub fn signals(&self) -> Arc<Signals> {
        self.signals.clone()
    }

    /// Whether this CPU runs at the system level ([`Cpu::new_system`]).
    pub fn is_system(&self) -> bool {
        self.system
    }

    /// Reads general register `n` (0..=30; 31 reads as zero).
    #[inline(always)]
    pub fn xreg(&self, n: usize) -> u64 {
        self.x[n & 31]
    }

    /// Writes general register `n` (0..=30; writes to 31 are discarded).
    #[inline(always)]
    pub fn set_xreg(&mut self, n: usize, value: u64) {
        self.x[n & 31] = value;
        self.x[31] = 0;
    }

    /// Reads register `n` where encoding 31 means SP.
    #[inline(always)]
    pub fn xreg_sp(&self, n: usize) -> u64 {
        if n & 31 == 31 {
            self.sp
        } else {
            self.x[n & 31]
        }
    }

    /// Writes register `n` where encoding 31 means SP.
    #[inline(always)]
    pub fn set_xreg_sp(&mut self, n: usize, value: u64) {
        if n & 31 == 31 {
            self.sp = value;
        } else {
            self.x[n & 31] = value;
        }
    }

    /// Reads SIMD&FP register `n` as 128 bits.
    #[inline(always)]
    pub fn vreg(&self, n: usize) -> u128 {
        self.v[n & 31]
    }

    /// Writes all 128 bits of SIMD&FP register `n`.
    #[inline(always)]
    pub fn set_vreg(&mut self, n: usize, value: u128) {
        self.v[n & 31] = value;
    }

    /// Evaluates condition code `cond` (0..=15) against NZCV.
    #[inline(always)]
    pub fn condition_holds(&self, cond: u32) -> bool {
        CONDITIONS[(cond & 15) as usize] >> (self.nzcv >> 28) & 1 != 0
    }

    /// Makes compiled blocks return to the dispatcher instead of jumping to
    /// each other (translations or decoded code changed).
    #[inline]
    pub(crate) fn break_chains(&mut self) {
        self.tlb.bump();
    }

    /// Records `exit` as the reason execution stops and returns the marker.
    #[inline]
    pub(crate) fn stop(&mut self, exit: Exit) -> Step {
        self.exit = exit;
        Err(Stop)
    }

    /// Records `exit` as the reason execution stops and returns the marker.
    #[inline]
    pub(crate) fn raise(&mut self, exit: Exit) -> Stop {
        self.exit = exit;
        Stop
    }

    /// Forgets every cached translation. Call after changing the bus's
    /// mappings (unmapping, changing permissions, remapping).
    pub fn flush_tlb(&mut self) {
        self.tlb.flush();
    }

    /// Forgets every cached decoded block (for example after `execve`).
    pub fn flush_code_cache(&mut self) {
        self.cache.clear();
        self.code_pages.clear();
        self.dirty_code.clear();
    }

    /// Call in the child after the embedder `fork`ed the process: the
    /// compiled-code buffer is a shared mapping (W^X, one memfd mapped
    /// twice), so parent and child would write code into the same pages.
    /// The child drops every block and gets a buffer of its own.
    pub fn after_fork(&mut self) {
        self.cache.replace_code_buffer();
        self.flush_code_cache();
        // Retires the recent-target links into the old buffer.
        self.tlb.flush();
    }

    /// Tells the CPU that the embedder wrote `len` bytes of guest memory at host
    /// address `host` behind its back (e.g. a `read` system call), so blocks
    /// decoded from those pages — by this CPU or another sharing its code
    /// pages — are dropped before they run again.
    pub fn host_memory_written(&mut self, host: usize, len: usize) {
        /// Past this many pages dropping all code is cheaper than page by page.
        const MANY_PAGES: usize = 4096;
        if len == 0 {
            return;
        }
        if len / 4096 > MANY_PAGES {
            self.all_code_changed();
            return;
        }
        for page in host >> 12..=(host + len - 1) >> 12 {
            self.code_changed(page);
        }
    }

    /// Makes this CPU one of the CPUs of `domain`'s machine: they share
    /// code pages (code one of them changes — a store it sees, IC IVAU,
    /// IC IALLUIS — is dropped by all) and receive each other's broadcast
    /// TLB maintenance and events. Drops this CPU's blocks.
    pub fn join_domain(&mut self, domain: Arc<Domain>) {
        self.flush_code_cache();
        domain.join(&self.signals);
        self.code_seen = domain.code().generation();
        self.domain = domain;
    }

    /// The code in host page `page` changed: this CPU drops its blocks from
    /// it at the next block boundary, and so does every CPU it shares code
    /// pages with.
    pub(crate) fn code_changed(&mut self, page: usize) {
        if self.code_pages.remove(&page) {
            self.dirty_code.push(page);
            self.break_chains();
        }
        self.domain
            .invalidate_code(Invalidation::Page(page), &self.signals);
    }

    /// Drops every block of this CPU and of the CPUs it shares code with.
    pub(crate) fn all_code_changed(&mut self) {
        self.code_flush_all = true;
        self.break_chains();
        self.domain
            .invalidate_code(Invalidation::All, &self.signals);
    }

    /// Acts on the invalidations other CPUs logged since this one last
    /// looked (called at block boundaries; one atomic load when none).
    #[inline]
    pub(crate) fn catch_up_code(&mut self) {
        let code = self.domain.code();
        if code.generation() == self.code_seen {
            return;
        }
        let (recent, now) = code.since(self.code_seen);
        self.code_seen = now;
        match recent {
            None => self.code_flush_all = true,
            Some(list) => {
                for what in list {
                    match what {
                        Invalidation::All => self.code_flush_all = true,
                        Invalidation::Page(page) => {
                            if self.code_pages.remove(&page) {
                                self.dirty_code.push(page);
                            }
                        }
                    }
                }
            }
        }
        // Also when called in the middle of a block: no compiled block may
        // chain to a stale one before the dispatcher drops it.
        if !self.dirty_code.is_empty() || self.code_flush_all {
            self.break_chains();
        }
    }

    /// Sets the offset subtracted from the host's [`crate::counter`] to give
    /// the counter this CPU's guest reads (CNTVCT_EL0/CNTPCT_EL0).
    pub fn set_counter_offset(&mut self, offset: u64) {
        self.counter_offset = offset;
    }

    /// The counter value this CPU's guest reads now.
    pub fn counter(&self) -> u64 {
        crate::counter().wrapping_sub(self.counter_offset)
    }

    /// Clears the exclusive monitor (as a context switch or exception would).
    pub fn clear_exclusive(&mut self) {
        self.monitor.addr = None;
    }

    /// Resets the CPU as PSCI CPU_ON leaves it: EL1 on SP_EL1, interrupts
    /// masked, MMU and caches off, every register zero but x0 = `context`,
    /// at `entry`. Its MPIDR, domain and statistics stay.
    pub fn power_on(&mut self, entry: u64, context: u64) {
        let mut x = [0; 31];
        x[0] = context;
        self.set_state(&crate::CpuState {
            x,
            pc: entry,
            system: true,
            sys: SysRegs::reset(self.sys.mpidr_el1),
            insns_retired: self.insns_retired,
            exceptions_taken: self.exceptions_taken,
            ..Default::default()
        });
        self.signals.take_event();
    }

    /// Marks the CPU as running guest code and serves what other CPUs
    /// asked of it meanwhile (called by `run` on entry).
    pub(crate) fn enter_guest(&mut self) {
        self.signals.set_in_guest(true);
        self.serve_requests();
    }

    /// Serves what other CPUs asked and marks the CPU as out of guest code
    /// (called by `run` before it returns).
    pub(crate) fn leave_guest(&mut self) {
        self.serve_requests();
        self.signals.set_in_guest(false);
    }

    /// Acts on other CPUs' TLB maintenance and code changes.
    pub(crate) fn serve_requests(&mut self) {
        if let Some((ops, count)) = self.signals.take_tlb() {
            match ops {
                None => self.tlb.apply(TlbOp::All),
                Some(ops) => ops.into_iter().for_each(|op| self.tlb.apply(op)),
            }
            self.signals.mark_served(count);
        }
        self.catch_up_code();
    }

    /// TLB maintenance by this CPU (a TLBI): done here at once and, when
    /// `broadcast` (the inner shareable forms), asked of every other CPU of
    /// its domain (see [`Cpu::complete_tlb_broadcasts`]).
    pub(crate) fn tlb_maintenance(&mut self, op: TlbOp, broadcast: bool) {
        self.tlb.apply(op);
        if broadcast {
            let domain = self.domain.clone();
            domain.broadcast_tlb(op, &self.signals, &mut self.tlb_pending);
        }
    }

    /// Waits until every CPU asked for TLB maintenance by this one has done
    /// it (DSB), serving this CPU's own requests meanwhile so two CPUs
    /// waiting for each other both go on.
    pub(crate) fn complete_tlb_broadcasts(&mut self) {
        while let Some((cpu, ticket)) = self.tlb_pending.pop() {
            cpu.wait_served(ticket, Duration::MAX, || {
                if self.signals.load() & Signals::SYNC != 0 {
                    self.serve_requests();
                }
            });
        }
    }

    /// Tells the CPU the guest counter value by which `run` should return
    /// (its next timer deadline), so a WFE waits no longer; `None`: none.
    pub fn set_wake_deadline(&mut self, counter: Option<u64>) {
        self.wake_at = counter;
    }

    /// WFE's wait: returns true when an event came — the event register
    /// (cleared), an unmasked interrupt, a request from another thread, a
    /// store by another CPU to the granule the exclusive monitor is armed
    /// for (the global monitor's clearing, which sets the event register)
    /// — or [`MAX_WFE_WAIT`] passed (a spurious wake-up, which the
    /// architecture allows); false when the wake deadline came.
    pub(crate) fn wait_for_event(&mut self) -> bool {
        let watched = match self.monitor.addr {
            Some(_) if self.monitor_host != 0 && self.monitor.size <= 8 => Some((
                self.monitor_host,
                self.monitor.size,
                self.monitor.value as u64,
            )),
            _ => None,
        };
        let start = std::time::Instant::now();
        let mut spins = 0u32;
        loop {
            if self.signals.take_event() {
                return true;
            }
            let lines = self.signals.load();
            let unmasked = |line: u32, mask: u32| lines & line != 0 && self.sys.daif & mask == 0;
            if lines & (Signals::STOP | Signals::SYNC) != 0
                || unmasked(Signals::IRQ, crate::system::daif::I)
                || unmasked(Signals::FIQ, crate::system::daif::F)
            {
                return true;
            }
            if let Some((host, size, value)) = watched {
                // SAFETY: the host address of a RAM page this CPU read
                // through its TLB at the system level, where guest RAM
                // stays mapped as long as the CPU lives; read atomically.
                if unsafe { crate::insn::ldst::atomic::host_load(host as *const u8, size) } != value
                {
                    return true;
                }
            }
            if self.wake_at.is_some_and(|at| self.counter() >= at) {
                return false;
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else if start.elapsed() >= MAX_WFE_WAIT {
                return true;
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// Longest a WFE waits for an event: as long as the period of the event
/// stream Linux expects from the generic timer (its WFE-based waits rely on
/// being woken that often).
pub(crate) const MAX_WFE_WAIT: Duration = Duration::from_micros(100);
