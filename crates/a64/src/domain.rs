//! [`Domain`]: the CPUs of one machine — the architecture's inner
//! shareable domain — and what one of them broadcasts to the others:
//! changed code (`IC IVAU`, `IC IALLUIS`, stores to code pages), TLB
//! maintenance (`TLBI ...IS`) and events (`SEV`).
//!
//! A broadcast never stops the other CPUs: each is asked (through its
//! [`Signals`]) to act at its next block boundary, where compiled code
//! looks at its signals anyway. TLB maintenance has a completion the
//! architecture defines — it is done for every CPU once the issuing CPU's
//! next `DSB` completes — so the issuer keeps the tickets of its requests
//! and its `DSB` waits for them (see [`crate::Cpu`]'s barrier).

use std::sync::{Arc, Mutex, Weak};

use crate::code::{Invalidation, SharedCode};
use crate::system::signals::TlbOp;
use crate::system::Signals;

/// The CPUs of one machine and the code pages they share.
#[derive(Debug, Default)]
pub struct Domain {
    code: SharedCode,
    cpus: Mutex<Vec<Weak<Signals>>>,
}

impl Domain {
    /// An empty domain, for the CPUs of one machine to join
    /// ([`crate::Cpu::join_domain`]).
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// How many host pages hold decoded code of some CPU.
    pub fn code_pages(&self) -> usize {
        self.code.pages()
    }

    pub(crate) fn code(&self) -> &SharedCode {
        &self.code
    }

    /// Adds a CPU.
    pub(crate) fn join(&self, signals: &Arc<Signals>) {
        let mut cpus = self.cpus.lock().unwrap_or_else(|e| e.into_inner());
        cpus.retain(|c| c.strong_count() > 0);
        cpus.push(Arc::downgrade(signals));
    }

    /// Every CPU of the domain but `me`.
    fn others(&self, me: &Signals) -> Vec<Arc<Signals>> {
        let cpus = self.cpus.lock().unwrap_or_else(|e| e.into_inner());
        cpus.iter()
            .filter_map(Weak::upgrade)
            .filter(|c| !std::ptr::eq(Arc::as_ptr(c), me))
            .collect()
    }

    /// Code changed (or may have): logs it and brings the other CPUs to a
    /// block boundary, where they read the log.
    pub(crate) fn invalidate_code(&self, what: Invalidation, from: &Signals) {
        if self.code.invalidate(what) {
            for cpu in self.others(from) {
                cpu.request_sync();
            }
        }
    }

    /// Asks every CPU but `from` to do `op`; adds each request's ticket to
    /// `pending` (the issuer's next `DSB` waits for them).
    pub(crate) fn broadcast_tlb(
        &self,
        op: TlbOp,
        from: &Signals,
        pending: &mut Vec<(Arc<Signals>, u64)>,
    ) {
        for cpu in self.others(from) {
            let ticket = cpu.post_tlb(op);
            pending.push((cpu, ticket));
        }
    }

    /// The embedder changed the mappings every CPU of the domain sees (a
    /// user-mode `munmap`, `mprotect`, replacing `mmap`, shrinking `brk` or
    /// `mremap`): asks every CPU to drop its cached
    /// translations and waits until each has, or is outside guest code
    /// (it then drops them before it runs guest code again). `Err` if one
    /// did not answer within `limit`.
    pub fn drop_translations(&self, limit: std::time::Duration) -> Result<(), String> {
        let cpus: Vec<Arc<Signals>> = {
            let cpus = self.cpus.lock().unwrap_or_else(|e| e.into_inner());
            cpus.iter().filter_map(Weak::upgrade).collect()
        };
        cpus.iter().try_for_each(|cpu| cpu.drop_translations(limit))
    }

    /// SEV: sets the event register of every CPU, `from`'s too.
    pub(crate) fn send_event(&self, from: &Signals) {
        from.send_event();
        for cpu in self.others(from) {
            cpu.send_event();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ptr::NonNull;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::bus::{Access, Bus, PageLookup, PAGE_MASK};
    use crate::system::sctlr;
    use crate::{Cpu, Exit, FlatMemory};

    const RAM: u64 = 0x4000_0000;
    /// A 4K page mapped through a level-3 table at RAM + 0x2000.
    const PAGE_VA: u64 = 0x1000_0000;
    /// A 2 MiB block (RAM + 0x40_0000) holding code and a result slot.
    const BLOCK_VA: u64 = 0x2000_0000;
    const LDR_X1_X0: u32 = 0xf940_0001;
    const STR_X1_X2: u32 = 0xf900_0041;
    const B_MINUS_8: u32 = 0x17ff_fffe;
    const TLBI_VAE1IS_X3: u32 = 0xd508_8323;
    const TLBI_VAE1_X3: u32 = 0xd508_8723;
    const TLBI_VMALLE1IS: u32 = 0xd508_831f;
    const DSB_ISH: u32 = 0xd503_3b9f;
    const SEV: u32 = 0xd503_209f;
    const BRK: u32 = 0xd420_0000;
    const HVC: u32 = 0xd400_0002;
    const B_MINUS_12: u32 = 0x17ff_fffd;

    /// One RAM shared by CPUs on several threads (each has its own view).
    #[derive(Clone, Copy)]
    struct SharedRam {
        base: u64,
        ptr: NonNull<u8>,
        len: usize,
    }
    // SAFETY: the memory outlives the test's threads; guest accesses race
    // as they would on hardware.
    unsafe impl Send for SharedRam {}

    // SAFETY: the leaked allocation never moves or goes away.
    unsafe impl Bus for SharedRam {
        fn page(&mut self, addr: u64, _access: Access) -> PageLookup {
            match addr.checked_sub(self.base) {
                Some(off) if off < self.len as u64 => {
                    // SAFETY: within the allocation.
                    PageLookup::Ram(unsafe { self.ptr.add((off & !PAGE_MASK) as usize) })
                }
                _ => PageLookup::Fault,
            }
        }
    }

    impl SharedRam {
        fn put(&self, pa: u64, v: u64) {
            let p = self.ptr.as_ptr().wrapping_add((pa - self.base) as usize) as *mut u64;
            // SAFETY: within the allocation, aligned.
            unsafe { std::ptr::write_volatile(p, v) }
        }
        fn get(&self, pa: u64) -> u64 {
            let p = self.ptr.as_ptr().wrapping_add((pa - self.base) as usize) as *const u64;
            // SAFETY: within the allocation, aligned.
            unsafe { std::ptr::read_volatile(p) }
        }
        fn code(&self, pa: u64, words: &[u32]) {
            for (i, w) in words.iter().enumerate() {
                let p = self
                    .ptr
                    .as_ptr()
                    .wrapping_add((pa - self.base) as usize + 4 * i);
                // SAFETY: within the allocation.
                unsafe { (p as *mut u32).write_unaligned(*w) }
            }
        }
        /// Points PAGE_VA at RAM + `offset`.
        fn map_page(&self, offset: u64) {
            self.put(RAM + 0x2000, (RAM + offset) | 3 | 1 << 10);
        }
    }

    /// 16 MiB of RAM with page tables: PAGE_VA → RAM + 0x10_0000 (0xaaaa;
    /// RAM + 0x11_0000 holds 0xbbbb), BLOCK_VA → RAM + 0x40_0000.
    fn ram() -> SharedRam {
        let mut mem = FlatMemory::new(RAM, 16 << 20);
        let ram = SharedRam {
            base: RAM,
            ptr: NonNull::new(mem.bytes_mut().as_mut_ptr()).unwrap(),
            len: 16 << 20,
        };
        std::mem::forget(mem);
        ram.put(RAM, (RAM + 0x1000) | 3);
        ram.put(RAM + 0x1000 + (PAGE_VA >> 21) * 8, (RAM + 0x2000) | 3);
        ram.map_page(0x10_0000);
        ram.put(
            RAM + 0x1000 + (BLOCK_VA >> 21) * 8,
            (RAM + 0x40_0000) | 1 | 1 << 10,
        );
        ram.put(RAM + 0x10_0000, 0xaaaa);
        ram.put(RAM + 0x11_0000, 0xbbbb);
        ram
    }

    fn cpu(domain: &Arc<Domain>, index: u64) -> Cpu {
        let mut cpu = Cpu::new_system(index);
        cpu.join_domain(domain.clone());
        cpu.sys.tcr_el1 = 25 | 1 << 23 | 2 << 32;
        cpu.sys.ttbr0_el1 = RAM;
        cpu.sys.sctlr_el1 |= sctlr::M;
        cpu.update_mmu_index();
        cpu
    }

    /// CPU B loops loading PAGE_VA into a result slot on a thread of its
    /// own; CPU A remaps the page, runs `tlbi` then `dsb ish` and says
    /// whether B then saw the new page (within a second).
    fn remap_while_another_cpu_reads(tlbi: u32) -> bool {
        let domain = Domain::new();
        let ram = ram();
        // Code, slot and PAGE_VA in different TLB sets (and pages), so the
        // reader's translation of PAGE_VA stays cached unless dropped.
        let slot = BLOCK_VA + 0x6800;
        ram.code(RAM + 0x40_5000, &[LDR_X1_X0, STR_X1_X2, B_MINUS_8]);
        ram.code(RAM + 0x40_7000, &[tlbi, DSB_ISH, HVC]);
        let mut b = cpu(&domain, 1);
        b.pc = BLOCK_VA + 0x5000;
        b.set_xreg(0, PAGE_VA);
        b.set_xreg(2, slot);
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (stop, mut bus) = (stop.clone(), ram);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    b.run(&mut bus, 5_000);
                }
            })
        };
        while ram.get(RAM + 0x40_6800) != 0xaaaa {
            std::thread::yield_now();
        }
        let mut a = cpu(&domain, 0);
        ram.map_page(0x11_0000);
        a.pc = BLOCK_VA + 0x7000;
        a.set_xreg(3, PAGE_VA >> 12);
        let mut bus = ram;
        assert_eq!(a.run(&mut bus, 100), Exit::Hvc(0));
        let start = Instant::now();
        let mut seen = false;
        while start.elapsed() < Duration::from_secs(1) && !seen {
            seen = ram.get(RAM + 0x40_6800) == 0xbbbb;
        }
        stop.store(true, Ordering::SeqCst);
        reader.join().unwrap();
        seen
    }

    #[test]
    fn tlbi_is_reaches_a_cpu_running_on_another_thread() {
        assert!(remap_while_another_cpu_reads(TLBI_VAE1IS_X3));
    }

    #[test]
    fn a_local_tlbi_does_not() {
        // The control: without the broadcast the reader keeps its stale
        // translation (as hardware may).
        assert!(!remap_while_another_cpu_reads(TLBI_VAE1_X3));
    }

    #[test]
    fn cpus_broadcasting_at_once_wait_for_each_other_without_deadlock() {
        let domain = Domain::new();
        let ram = ram();
        ram.code(
            RAM + 0x40_0100,
            &[TLBI_VMALLE1IS, DSB_ISH, 0xd503_201f, B_MINUS_12],
        );
        let threads: Vec<_> = (0..3)
            .map(|i| {
                let mut c = cpu(&domain, i);
                c.pc = BLOCK_VA + 0x100;
                let mut bus = ram;
                std::thread::spawn(move || {
                    c.run(&mut bus, 200_000);
                    c.insns_retired
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap() >= 200_000);
        }
    }

    #[test]
    fn sev_sets_every_cpus_event_register() {
        let domain = Domain::new();
        let mut mem = FlatMemory::new(0x1000, 0x1000);
        mem.load_code(0x1000, &[SEV, BRK]);
        let (mut a, b) = (Cpu::new(), Cpu::new());
        a.join_domain(domain.clone());
        let mut b = b;
        b.join_domain(domain);
        a.pc = 0x1000;
        assert_eq!(a.run(&mut mem, 10), Exit::Brk(0));
        assert!(b.signals.take_event());
        assert!(a.signals.take_event(), "SEV sets the sender's too");
        assert!(!b.signals.take_event(), "WFE's read clears it");
    }
}
