//! The block-caching interpreter: decode a basic block once, cache it by
//! guest PC, and run cached blocks until the embedder must act.
//!
//! The hot loop does no allocation and no per-field dispatch: one indirect
//! call per instruction into a handler that reads its fields from the raw
//! encoding. On x86-64 a block that runs again is compiled to host code
//! (`jit/`), and this loop becomes the dispatcher between compiled blocks.

use crate::addr_hash::AddrMap;
use crate::bus::{Bus, PAGE_MASK};
use crate::cpu::{Cpu, Exit, Stop};
use crate::decode::{lookup, undefined, undefined_shim, Exec, Insn};
use crate::jit::{
    target_slot, BlockShape, CodeBuffer, Compiled, JitCtx, Link, Links, Shim, TARGETS,
};
use crate::system::Signals;

/// Longest block, in instructions.
const MAX_BLOCK_INSNS: usize = 64;
/// Entries of the direct-mapped PC → block cache in front of the hash map.
const JUMP_CACHE: usize = 4096;
/// Blocks kept before the whole cache is dropped and rebuilt.
const MAX_BLOCKS: usize = 1 << 18;
/// By default a block is interpreted until its this-many-th run, then
/// compiled: much code (boot, program start-up) runs once, and interpreting
/// it once costs far less than compiling it.
const COMPILE_AT_RUN: u32 = 2;

/// A decoded basic block.
pub(crate) struct Block {
    insns: Box<[Insn]>,
    /// PC after the last instruction, used when it does not set the PC itself.
    end_pc: u64,
    /// Whether the last instruction sets `cpu.pc` itself.
    ends_with_jump: bool,
    /// Host page (address >> 12) the block was decoded from.
    host_page: usize,
    /// The block compiled to host code, once it has run often enough.
    jit: Option<Compiled>,
    /// Its instructions' shims, kept for the compiler until it runs (empty
    /// once compiled, or when there is no JIT).
    shims: Box<[Shim]>,
    /// Runs so far while interpreted.
    runs: u32,
    /// Successors compiled code may jump to directly (boxed: the code
    /// embeds their address).
    links: Box<Links>,
}

/// Decoded blocks keyed by guest PC and the host page the code came from
/// (the same virtual address can hold different code in different address
/// spaces, and the same code can be mapped at several addresses).
pub(crate) struct BlockCache {
    blocks: Vec<Option<Block>>,
    free: Vec<u32>,
    by_key: AddrMap<(u64, usize), u32>,
    by_host_page: AddrMap<usize, Vec<u64>>,
    /// Direct-mapped PC → block id (allocated by [`BlockCache::ready`]).
    jump: Box<[(u64, u32)]>,
    /// Executable memory for compiled blocks, when the JIT is on.
    code: Option<CodeBuffer>,
    /// Recent block entries for compiled code's indirect jumps (see
    /// [`JitCtx::targets`]); kept across clears, where the translation
    /// generation retires its entries.
    targets: Box<[Link]>,
    /// Whether `code` was set up (or found unavailable).
    code_tried: bool,
    /// The run at which a block is compiled (see [`COMPILE_AT_RUN`]).
    compile_at_run: u32,
}

impl Default for BlockCache {
    /// An empty cache that allocates nothing until [`BlockCache::ready`].
    fn default() -> Self {
        BlockCache {
            blocks: Vec::new(),
            free: Vec::new(),
            by_key: AddrMap::default(),
            by_host_page: AddrMap::default(),
            jump: Box::new([]),
            code: None,
            targets: Box::new([]),
            compile_at_run: COMPILE_AT_RUN,
            code_tried: false,
        }
    }
}

#[inline(always)]
fn jump_slot(pc: u64) -> usize {
    (pc >> 2) as usize & (JUMP_CACHE - 1)
}

impl BlockCache {
    /// Allocates the jump cache and the code buffer on first use.
    fn ready(&mut self) {
        if self.jump.is_empty() {
            self.jump = vec![(1, 0); JUMP_CACHE].into_boxed_slice();
        }
        if !self.code_tried {
            self.code_tried = true;
            self.code = CodeBuffer::new();
            if self.code.is_some() {
                self.targets = vec![Link::NONE; TARGETS].into_boxed_slice();
            }
        }
    }

    /// Gives up the code buffer (shared with a forked parent) for a new one,
    /// made on the next [`BlockCache::ready`]; the caller then clears the cache.
    pub fn replace_code_buffer(&mut self) {
        self.code = None;
        self.code_tried = false;
    }

    /// Drops every block (and its compiled code). The tables are dropped
    /// rather than emptied, so a full cache's memory goes back; the code
    /// buffer and the recent-targets table stay (the caller retires the
    /// latter's entries by moving to a new translation generation).
    pub fn clear(&mut self) {
        if let Some(c) = &mut self.code {
            c.clear();
        }
        self.blocks = Vec::new();
        self.free = Vec::new();
        self.by_key = AddrMap::default();
        self.by_host_page = AddrMap::default();
        self.jump.fill((1, 0));
    }

    /// Counts a run of block `id`; says whether it is now due for compiling.
    #[inline(always)]
    fn due_for_compiling(&mut self, id: u32) -> bool {
        match &mut self.blocks[id as usize] {
            Some(b) if b.jit.is_none() && !b.shims.is_empty() => {
                b.runs += 1;
                b.runs >= self.compile_at_run
            }
            _ => false,
        }
    }

    /// Compiles block `id`. Returns true if the code buffer was full and the
    /// whole cache was emptied instead (block `id` is then gone too).
    fn compile(&mut self, id: u32) -> bool {
        let (Some(code), Some(block)) = (&mut self.code, &mut self.blocks[id as usize]) else {
            return false;
        };
        let shims = std::mem::take(&mut block.shims);
        let shape = BlockShape {
            insns: &block.insns,
            links: &mut *block.links,
            ends_with_jump: block.ends_with_jump,
            end_pc: block.end_pc,
        };
        match code.compile(&shape, &shims) {
            Some(compiled) => {
                block.jit = Some(compiled);
                false
            }
            None => {
                self.clear();
                true
            }
        }
    }

    /// The block for `pc` decoded from host page `host_page`, if cached.
    #[inline(always)]
    fn find(&mut self, pc: u64, host_page: usize) -> Option<u32> {
        let slot = jump_slot(pc);
        let (tag, id) = self.jump[slot];
        if tag == pc {
            if let Some(b) = &self.blocks[id as usize] {
                if b.host_page == host_page {
                    return Some(id);
                }
            }
        }
        let id = *self.by_key.get(&(pc, host_page))?;
        self.jump[slot] = (pc, id);
        Some(id)
    }

    /// Caches `block` for `pc`; also says whether the cache had to be
    /// emptied first (every other block and its code is then gone).
    fn insert(&mut self, pc: u64, mut block: Block, shims: &[Shim]) -> (u32, bool) {
        let mut cleared = false;
        if self.by_key.len() >= MAX_BLOCKS {
            self.clear();
            cleared = true;
        }
        if self.code.is_some() {
            block.shims = Box::from(shims);
        }
        let host_page = block.host_page;
        self.by_host_page.entry(host_page).or_default().push(pc);
        let id = match self.free.pop() {
            Some(id) => {
                self.blocks[id as usize] = Some(block);
                id
            }
            None => {
                self.blocks.push(Some(block));
                (self.blocks.len() - 1) as u32
            }
        };
        self.by_key.insert((pc, host_page), id);
        self.jump[jump_slot(pc)] = (pc, id);
        (id, cleared)
    }

    /// Drops every block decoded from host page `host_page`.
    pub fn invalidate_host_page(&mut self, host_page: usize) {
        let Some(pcs) = self.by_host_page.remove(&host_page) else {
            return;
        };
        for pc in pcs {
            if let Some(id) = self.by_key.remove(&(pc, host_page)) {
                self.blocks[id as usize] = None;
                self.free.push(id);
                let slot = jump_slot(pc);
                if self.jump[slot] == (pc, id) {
                    self.jump[slot] = (1, 0);
                }
            }
        }
    }
}

/// Exceptions in a row without an instruction retired before the guest is
/// declared stuck ([`Exit::ExceptionLoop`]).
const MAX_STALLED_EXCEPTIONS: u32 = 32;

/// Tells a guest stuck taking exceptions from one making progress between
/// them. Progress is the retired-instruction count, not what the dispatcher
/// saw: chained blocks (a whole page-fault handler, say) may run between two
/// of its visits.
struct StallWatch {
    stalled: u32,
    retired_at_last: u64,
}

impl StallWatch {
    fn new() -> Self {
        StallWatch {
            stalled: 0,
            retired_at_last: u64::MAX,
        }
    }

    /// Notes an exception with `retired` instructions retired so far;
    /// true once too many came in a row without progress.
    fn exception(&mut self, retired: u64) -> bool {
        self.stalled = if retired == self.retired_at_last {
            self.stalled + 1
        } else {
            1
        };
        self.retired_at_last = retired;
        self.stalled > MAX_STALLED_EXCEPTIONS
    }
}

impl Cpu {
    /// Runs guest code from `self.pc` until the embedder must act or about
    /// `budget` instructions have retired (checked at block boundaries).
    pub fn run(&mut self, bus: &mut dyn Bus, budget: u64) -> Exit {
        self.enter_guest();
        let mut cache = std::mem::take(&mut self.cache);
        let exit = self.run_blocks(&mut cache, bus, budget);
        self.cache = cache;
        self.leave_guest();
        exit
    }

    /// Makes every block compiled from its first run instead of after it
    /// proved to be run again (for tests that must exercise compiled code:
    /// they run most code once). No effect where there is no compiler.
    pub fn compile_on_first_run(&mut self) {
        self.cache.compile_at_run = 1;
    }

    fn run_blocks(&mut self, cache: &mut BlockCache, bus: &mut dyn Bus, budget: u64) -> Exit {
        cache.ready();
        let limit = self.insns_retired.saturating_add(budget);
        let mut stalls = StallWatch::new();
        let mut ctx = JitCtx {
            bus: &mut *bus as *mut (dyn Bus + '_),
            limit,
            signals: self.signals.word(),
            last_links: std::ptr::null_mut(),
            stopped_insns: std::ptr::null(),
            // Allocated once by `ready` and kept across clears.
            targets: cache.targets.as_ptr(),
        };
        loop {
            if self.signals.load() & Signals::SYNC != 0 {
                self.serve_requests();
            }
            self.catch_up_code();
            if !self.dirty_code.is_empty() || self.code_flush_all {
                self.break_chains();
                ctx.last_links = std::ptr::null_mut();
            }
            while let Some(page) = self.dirty_code.pop() {
                cache.invalidate_host_page(page);
            }
            if self.code_flush_all {
                self.code_flush_all = false;
                cache.clear();
                self.code_pages.clear();
            }
            if self.insns_retired >= limit {
                return Exit::Budget;
            }
            let lines = self.signals.load();
            if lines != 0 {
                if lines & Signals::STOP != 0 && self.signals.take_stop() {
                    return Exit::Stopped;
                }
                if self.system {
                    self.take_interrupt(lines);
                }
            }
            let pc = self.pc;
            let found = if pc & 3 != 0 {
                self.exit = Exit::PcAlignment;
                Err(Stop)
            } else {
                self.fetch_page(bus, pc)
                    .and_then(|host| match cache.find(pc, host >> 12) {
                        Some(id) => Ok(id),
                        None => self.translate_block(pc, host).map(|b| {
                            let (id, cleared) = cache.insert(pc, b, &self.decoded_shims);
                            if cleared {
                                // Links pointed into code that is gone.
                                self.break_chains();
                                ctx.last_links = std::ptr::null_mut();
                            }
                            id
                        }),
                    })
            };
            let id = match found {
                Ok(id) => id,
                Err(Stop) => {
                    let stuck = stalls.exception(self.insns_retired);
                    if self.system && self.exit_to_exception() {
                        if stuck {
                            return Exit::ExceptionLoop;
                        }
                        continue;
                    }
                    return self.exit;
                }
            };
            if cache.due_for_compiling(id) && cache.compile(id) {
                // The code buffer was full and everything is gone: start over.
                self.break_chains();
                ctx.last_links = std::ptr::null_mut();
                continue;
            }
            let block = cache.blocks[id as usize]
                .as_ref()
                .expect("cached block id is live");
            let mut failed = None;
            if let Some(jit) = block.jit {
                // The block that ran last learns that this one follows it.
                if !ctx.last_links.is_null() {
                    // SAFETY: links live as long as their block; a clear or
                    // invalidation resets `last_links` before blocks go away.
                    unsafe { (*ctx.last_links).learn(pc, self.tlb.generation, jit.chain_entry) };
                }
                ctx.last_links = std::ptr::null_mut();
                ctx.bus = &mut *bus as *mut (dyn Bus + '_);
                cache.targets[target_slot(pc)] = Link {
                    pc,
                    generation: self.tlb.generation,
                    target: jit.chain_entry,
                };
                // SAFETY: the code was compiled from this block (and the
                // blocks it chains to), whose instructions and links live as
                // long as the code may run; the CPU and context are live.
                let r = unsafe { (jit.entry)(self, &mut ctx, block.insns.as_ptr()) };
                if r == 0 {
                    // Ran to the end of some block, PC and count updated.
                    continue;
                }
                let i = (r - 1) as usize;
                // SAFETY: the stopping block recorded its live instructions.
                let insn = unsafe { &*ctx.stopped_insns.add(i) };
                failed = Some((i, insn.pc));
                ctx.last_links = std::ptr::null_mut();
            } else {
                ctx.last_links = std::ptr::null_mut();
                for (i, insn) in block.insns.iter().enumerate() {
                    if let Err(Stop) = (insn.exec)(self, bus, insn) {
                        failed = Some((i, insn.pc));
                        break;
                    }
                }
            }
            match failed {
                None => {
                    self.insns_retired += block.insns.len() as u64;
                    if !block.ends_with_jump {
                        self.pc = block.end_pc;
                    }
                }
                Some((i, pc)) => {
                    self.pc = pc;
                    self.insns_retired += i as u64;
                    let stuck = stalls.exception(self.insns_retired);
                    if self.system && self.exit_to_exception() {
                        if stuck {
                            return Exit::ExceptionLoop;
                        }
                        continue;
                    }
                    return self.exit;
                }
            }
        }
    }

    /// Decodes the block starting at `pc`.
    /// `host` is the host address of the page holding `pc`.
    /// The block's shims are left in `self.decoded_shims`.
    fn translate_block(&mut self, pc: u64, host: usize) -> Result<Block, Stop> {
        let mut insns = std::mem::take(&mut self.decoded_insns);
        let mut shims = std::mem::take(&mut self.decoded_shims);
        insns.clear();
        shims.clear();
        let mut addr = pc;
        let mut ends_with_jump = false;
        let fp_trapped = self.fp_trapped();
        // The page counts as code before it is read: another CPU's
        // invalidation of it from now on reaches this block.
        let host_page = host >> 12;
        if self.code_pages.insert(host_page) {
            self.tlb.drop_writes_to_host_page(host_page);
            self.domain.code().add_page(host_page);
        }
        loop {
            let p = (host + (addr & PAGE_MASK) as usize) as *const u32;
            // SAFETY: `host` is a live page from the bus and `addr` stays within it.
            let raw = u32::from_le(unsafe { p.read_unaligned() });
            let (exec, shim, ends) = match lookup(raw) {
                Some(e) if fp_trapped && is_fp_simd(e.class, raw) => {
                    (fp_trap as Exec, fp_trap_shim as Shim, true)
                }
                Some(e) => (e.exec, e.shim, e.ends_block),
                None => (undefined as Exec, undefined_shim as Shim, true),
            };
            shims.push(shim);
            insns.push(Insn {
                exec,
                raw,
                pc: addr,
            });
            addr = addr.wrapping_add(4);
            if ends {
                ends_with_jump = true;
                break;
            }
            if insns.len() >= MAX_BLOCK_INSNS || addr & PAGE_MASK == 0 {
                break;
            }
        }
        let block = Block {
            insns: Box::from(insns.as_slice()),
            end_pc: addr,
            ends_with_jump,
            host_page,
            jit: None,
            shims: Box::default(),
            runs: 0,
            links: Box::default(),
        };
        self.decoded_insns = insns;
        self.decoded_shims = shims;
        Ok(block)
    }
}

/// Whether an encoding of `class` uses the FP/SIMD registers (and so traps
/// when CPACR_EL1.FPEN says so): the FP and SIMD classes, and the loads and
/// stores of SIMD&FP registers (bit 26, V, set).
fn is_fp_simd(class: &str, raw: u32) -> bool {
    class.starts_with("fp-")
        || class.starts_with("simd-")
        || (class == "ldst" && raw >> 26 & 1 != 0)
}

/// Stands in for an FP/SIMD instruction while CPACR_EL1.FPEN traps it.
fn fp_trap(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Insn) -> crate::cpu::Step {
    cpu.stop(Exit::FpTrap)
}

/// [`fp_trap`] for compiled code.
unsafe extern "C" fn fp_trap_shim(cpu: *mut Cpu, ctx: *mut JitCtx<'_>, insn: *const Insn) -> u8 {
    // SAFETY: called only by compiled code, with valid pointers.
    unsafe { crate::jit::call(cpu, ctx, insn, fp_trap) }
}
