//! The block compiler: turns a decoded block into x86-64 code. Every
//! instruction becomes either inline code (the frequent integer forms,
//! [`inline`]) or a direct call to its handler's C-ABI shim, so that each
//! guest instruction has its own host call site instead of all of them
//! sharing the interpreter loop's one indirect call. The interpreter in
//! `exec.rs` stays the reference and the fallback (non-x86-64 hosts, no
//! executable memory, or `PV_NO_JIT=1`).
//!
//! Compiled code runs `fn(cpu, ctx, insns) -> u64`: 0 when the whole block
//! ran (the PC set as the interpreter would), or k + 1 when instruction k
//! stopped (its handler recorded why, exactly as in the interpreter).

#[cfg(target_arch = "x86_64")]
mod alu;
#[cfg(target_arch = "x86_64")]
mod inline;
#[cfg(target_arch = "x86_64")]
mod ldst;
#[cfg(target_arch = "x86_64")]
mod sysreg;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::decode::{Exec, Insn};

/// What compiled code and shims need besides the CPU.
#[repr(C)]
pub(crate) struct JitCtx<'a> {
    /// The bus handlers use.
    pub bus: *mut (dyn Bus + 'a),
    /// Chaining stops once `cpu.insns_retired` reaches this.
    pub limit: u64,
    /// The CPU's interrupt/stop lines: chaining stops while any is up.
    pub signals: *const u32,
    /// Set by a block that ran to its end: its links, for the dispatcher
    /// to fill with the block that follows.
    pub last_links: *mut Links,
    /// Set by a block that stopped: its instructions (the return value
    /// says which one stopped).
    pub stopped_insns: *const Insn,
    /// The CPU's table of recent block entries ([`TARGETS`] links indexed by
    /// [`target_slot`]), which compiled code consults when neither of a
    /// block's own links matches (returns and other indirect branches).
    pub targets: *const Link,
}

/// Entries of the per-CPU table of recent block entries.
pub(crate) const TARGETS: usize = 4096;

/// The entry of the recent-targets table for `pc`.
#[inline(always)]
pub(crate) fn target_slot(pc: u64) -> usize {
    (pc >> 2) as usize & (TARGETS - 1)
}

/// One remembered successor of a block: when the PC is `pc` and the
/// translation generation still `generation`, compiled code jumps straight
/// to `target` (another block's chain entry).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Link {
    pub pc: u64,
    pub generation: u64,
    pub target: usize,
}

/// Two successors per block (a conditional branch has two).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Links {
    pub slot: [Link; 2],
}

impl Link {
    /// A link that matches no PC.
    pub const NONE: Link = Link {
        pc: 1, // never a PC
        generation: 0,
        target: 0,
    };
}

impl Default for Links {
    fn default() -> Self {
        Links {
            slot: [Link::NONE; 2],
        }
    }
}

impl Links {
    /// Remembers that `pc` is followed by the block whose chain entry is
    /// `target`, valid while the generation stays `generation`.
    pub fn learn(&mut self, pc: u64, generation: u64, target: usize) {
        let link = Link {
            pc,
            generation,
            target,
        };
        let s0 = self.slot[0];
        if s0.pc == pc || s0.generation != generation {
            self.slot[0] = link;
        } else {
            self.slot[1] = link;
        }
    }
}

/// A compiled block: its entry (from the dispatcher) and its chain entry
/// (from another compiled block, registers already set up).
#[derive(Clone, Copy)]
pub(crate) struct Compiled {
    pub entry: BlockFn,
    pub chain_entry: usize,
}

/// A handler with the C ABI, as compiled code calls it: returns 1 when the
/// instruction stopped.
pub(crate) type Shim = for<'a> unsafe extern "C" fn(*mut Cpu, *mut JitCtx<'a>, *const Insn) -> u8;

/// Compiled block entry.
pub(crate) type BlockFn =
    for<'a> unsafe extern "C" fn(*mut Cpu, *mut JitCtx<'a>, *const Insn) -> u64;

/// Runs handler `f` for a shim.
///
/// # Safety
/// The pointers must be valid, as compiled code passes them.
#[inline(always)]
pub(crate) unsafe fn call(cpu: *mut Cpu, ctx: *mut JitCtx<'_>, insn: *const Insn, f: Exec) -> u8 {
    // SAFETY: compiled code passes the live CPU, context and instruction.
    unsafe { f(&mut *cpu, &mut *(*ctx).bus, &*insn).is_err() as u8 }
}

/// The shim for rows without one of their own: calls `insn.exec`.
///
/// # Safety
/// Called only by compiled code, with valid pointers.
pub(crate) unsafe extern "C" fn dynamic_shim(
    cpu: *mut Cpu,
    ctx: *mut JitCtx<'_>,
    insn: *const Insn,
) -> u8 {
    // SAFETY: as the caller promises.
    unsafe { call(cpu, ctx, insn, (*insn).exec) }
}

/// A table row together with its C-ABI shim.
macro_rules! enc {
    ($pattern:expr, $name:expr, $class:expr, $handler:path $(,)?) => {{
        unsafe extern "C" fn shim(
            cpu: *mut crate::cpu::Cpu,
            ctx: *mut crate::jit::JitCtx<'_>,
            insn: *const crate::decode::Insn,
        ) -> u8 {
            // SAFETY: called only by compiled code, with valid pointers.
            unsafe { crate::jit::call(cpu, ctx, insn, $handler) }
        }
        crate::decode::Encoding::new($pattern, $name, $class, $handler, shim)
    }};
}

/// A block-ending table row together with its C-ABI shim.
macro_rules! enc_branch {
    ($pattern:expr, $name:expr, $class:expr, $handler:path $(,)?) => {{
        unsafe extern "C" fn shim(
            cpu: *mut crate::cpu::Cpu,
            ctx: *mut crate::jit::JitCtx<'_>,
            insn: *const crate::decode::Insn,
        ) -> u8 {
            // SAFETY: called only by compiled code, with valid pointers.
            unsafe { crate::jit::call(cpu, ctx, insn, $handler) }
        }
        crate::decode::Encoding::branch($pattern, $name, $class, $handler, shim)
    }};
}

/// What the compiler needs to know of a block.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct BlockShape<'b> {
    /// Its decoded instructions (their address is embedded in the code).
    pub insns: &'b [Insn],
    /// Its successor links (their address is embedded in the code).
    pub links: *mut Links,
    /// Whether the last instruction sets the PC itself.
    pub ends_with_jump: bool,
    /// The PC after the block otherwise.
    pub end_pc: u64,
}

/// Executable memory for compiled blocks, never writable and executable at
/// once (W^X): one memfd mapped twice, a read+execute view that code runs
/// from and a read+write view at another address that the compiler writes
/// through. x86 keeps instruction fetch coherent with stores to the same
/// physical page, whatever the virtual alias.
pub(crate) struct CodeBuffer {
    /// The executable view.
    #[cfg(target_arch = "x86_64")]
    base: *mut u8,
    /// The writable view of the same pages.
    #[cfg(target_arch = "x86_64")]
    write: *mut u8,
    #[cfg(target_arch = "x86_64")]
    used: usize,
    /// Bytes of the writable view whose page-table entries were dropped:
    /// finished pages are only executed, and mapping them twice would count
    /// them twice in the process's RSS.
    #[cfg(target_arch = "x86_64")]
    released: usize,
}

// SAFETY: the buffer is owned by one CPU's block cache and only touched through it.
unsafe impl Send for CodeBuffer {}

/// Size of one CPU's code buffer (mapped on demand; untouched pages cost nothing).
#[cfg(target_arch = "x86_64")]
const CODE_BYTES: usize = 8 << 20;

impl CodeBuffer {
    /// A code buffer, or `None` where compiled code cannot run (another host
    /// architecture, no executable memory, or PV_NO_JIT set).
    pub fn new() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::env::var_os("PV_NO_JIT").is_some() {
                return None;
            }
            let (base, write) = map_twice(CODE_BYTES)?;
            Some(CodeBuffer {
                base,
                write,
                used: 0,
                released: 0,
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// Forgets all compiled code (the blocks that used it are gone).
    pub fn clear(&mut self) {
        #[cfg(target_arch = "x86_64")]
        {
            self.used = 0;
            self.released = 0;
        }
    }

    /// Compiles `insns` (a decoded block, whose links are `links`); `None`
    /// when the buffer is full (the caller then clears the cache and this buffer).
    pub fn compile(&mut self, block: &BlockShape, shims: &[Shim]) -> Option<Compiled> {
        #[cfg(target_arch = "x86_64")]
        {
            let (code, chain_offset) = inline::compile_block(block, shims);
            if self.used + code.len() > CODE_BYTES {
                return None;
            }
            // SAFETY: the range lies inside our writable view and no compiled
            // code runs from it (it is past `used`).
            unsafe {
                std::ptr::copy_nonoverlapping(code.as_ptr(), self.write.add(self.used), code.len());
            }
            // SAFETY: the bytes just written are a complete function with the BlockFn ABI.
            let start = unsafe { self.base.add(self.used) };
            // SAFETY: as above.
            let entry = unsafe { std::mem::transmute::<*mut u8, BlockFn>(start) };
            self.used = (self.used + code.len() + 15) & !15;
            let finished = self.used & !4095;
            if finished > self.released {
                // SAFETY: a page-aligned range of our shared writable view;
                // the data stays in the memfd (and in the executable view).
                unsafe {
                    libc::madvise(
                        self.write.add(self.released) as *mut libc::c_void,
                        finished - self.released,
                        libc::MADV_DONTNEED,
                    );
                }
                self.released = finished;
            }
            Some(Compiled {
                entry,
                chain_entry: start as usize + chain_offset,
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (block, shims);
            None
        }
    }
}

/// Maps `len` bytes of a new memfd twice: (read+execute view, read+write view).
#[cfg(target_arch = "x86_64")]
fn map_twice(len: usize) -> Option<(*mut u8, *mut u8)> {
    // SAFETY: memfd_create with a static C string; the fd is closed below
    // (the mappings keep the memory alive).
    let fd = unsafe { libc::memfd_create(c"pocketvisor-jit".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let map = |prot| {
        // SAFETY: a fresh shared mapping of our own memfd.
        unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, 0) }
    };
    // SAFETY: sizing our own memfd; pages are allocated on first write.
    let sized = unsafe { libc::ftruncate(fd, len as libc::off_t) } == 0;
    let exec = if sized {
        map(libc::PROT_READ | libc::PROT_EXEC)
    } else {
        libc::MAP_FAILED
    };
    let write = if exec != libc::MAP_FAILED {
        map(libc::PROT_READ | libc::PROT_WRITE)
    } else {
        libc::MAP_FAILED
    };
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(fd) };
    if write == libc::MAP_FAILED {
        if exec != libc::MAP_FAILED {
            // SAFETY: unmapping the view made just above.
            unsafe { libc::munmap(exec, len) };
        }
        return None;
    }
    Some((exec as *mut u8, write as *mut u8))
}

impl Drop for CodeBuffer {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: unmaps exactly the mappings made in `new`; no block uses them any more.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, CODE_BYTES);
            libc::munmap(self.write as *mut libc::c_void, CODE_BYTES);
        }
    }
}
