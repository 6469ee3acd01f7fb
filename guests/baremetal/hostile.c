// Hostile bare-metal guests: each scenario abuses the virtual machine in
// one way and reports what happened on the UART. The VMM must survive all
// of them; a scenario that ends prints "HOSTILE-DONE" and powers off.
// Select with the kernel command line: hostile=mmio|gic|timer|undef|pagetables|novectors|virtio|smp.
typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned char u8;

u64 hvc_call(u64 x0, u64 x1, u64 x2, u64 x3);
u64 run_el0(u64 pc, u64 sp);

#define UART 0x09000000UL
#define GICD 0x08000000UL
#define GICR 0x080a0000UL
#define RAM 0x40000000UL

#define SYSREG_READ(name) ({ u64 v_; __asm__ volatile("mrs %0, " name : "=r"(v_)); v_; })
#define SYSREG_WRITE(name, v) __asm__ volatile("msr " name ", %0; isb" ::"r"((u64)(v)) : "memory")

static void putc_(char c) {
    volatile u32 *dr = (volatile u32 *)UART;
    *dr = (u8)c;
}
static void puts_(const char *s) {
    while (*s) putc_(*s++);
}
static void putdec(u64 v) {
    char b[24];
    int i = 0;
    do { b[i++] = '0' + v % 10; v /= 10; } while (v);
    while (i) putc_(b[--i]);
}
static void puthex(u64 v) {
    puts_("0x");
    for (int s = 60; s >= 0; s -= 4) putc_("0123456789abcdef"[(v >> s) & 15]);
}

// The compiler may call memset for zeroed arrays.
void *memset(void *d, int c, unsigned long n);
void *memset(void *d, int c, unsigned long n) {
    volatile u8 *p = d;
    while (n--) *p++ = (u8)c;
    return d;
}

void power_off(void) {
    hvc_call(0x84000008, 0, 0, 0);
}

static u64 seed = 0x9e3779b97f4a7c15UL;
static u64 rnd(void) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

// Exception bookkeeping, shared with the handler.
static volatile u64 sync_count, irq_count, last_esr, last_far;
static volatile u64 timer_cval, timer_latency;   // the timer scenario
static volatile u64 ec_hist[64];
static volatile int skip_faulting = 1;

struct frame { u64 x[19]; u64 lr; };

void on_exception(struct frame *f, u64 kind) {
    (void)f;
    if (kind == 0 || kind == 4) {
        u64 esr = SYSREG_READ("esr_el1");
        last_esr = esr;
        last_far = SYSREG_READ("far_el1");
        sync_count++;
        ec_hist[(esr >> 26) & 63]++;
        if (skip_faulting) {
            SYSREG_WRITE("elr_el1", SYSREG_READ("elr_el1") + 4);
        }
        return;
    }
    if (kind == 1 || kind == 5) {
        u64 intid = SYSREG_READ("s3_0_c12_c12_0");   // ICC_IAR1_EL1
        if (intid < 1020) {
            irq_count++;
            if (intid == 27) {
                timer_latency = SYSREG_READ("cntvct_el0") - timer_cval;
                SYSREG_WRITE("cntv_ctl_el0", 0);
            }
            SYSREG_WRITE("s3_0_c12_c12_1", intid);    // ICC_EOIR1_EL1
        }
        return;
    }
    puts_("HOSTILE unexpected exception kind ");
    putdec(kind);
    puts_("\n");
    power_off();
}

// ---- wild MMIO ----------------------------------------------------------
static void scenario_mmio(void) {
    u64 aborts0 = sync_count, n = 60000;
    for (u64 i = 0; i < n; i++) {
        u64 r = rnd();
        u64 size = 1UL << (r & 3);
        u64 addr;
        if ((r >> 4) % 20 == 0)
            addr = RAM + (64UL << 20) + ((r >> 8) % (1UL << 39));  // past RAM or deep inside
        else if ((r >> 4) % 2 == 0) {
            // Inside the real device frames: GIC distributor, redistributor, RTC.
            static const u64 frames[3][2] = {{GICD, 0x10000}, {GICR, 0x20000}, {0x09010000, 0x1000}};
            const u64 *f = frames[(r >> 40) % 3];
            addr = f[0] + (r >> 8) % f[1];
        } else
            addr = (r >> 8) % RAM;                                // anywhere in the device window
        addr &= ~(size - 1);
        if (addr >= UART && addr < UART + 0x1000) continue;      // keep the console readable
        if (addr >= RAM && addr < RAM + (64UL << 20)) continue;  // do not overwrite ourselves
        u64 v = rnd();
        int write = (r >> 2) & 1;
        switch (size) {
        case 1: if (write) *(volatile u8 *)addr = v; else (void)*(volatile u8 *)addr; break;
        case 2: if (write) *(volatile unsigned short *)addr = v; else (void)*(volatile unsigned short *)addr; break;
        case 4: if (write) *(volatile u32 *)addr = v; else (void)*(volatile u32 *)addr; break;
        default: if (write) *(volatile u64 *)addr = v; else (void)*(volatile u64 *)addr; break;
        }
    }
    puts_("HOSTILE mmio accesses=");
    putdec(n);
    puts_(" aborts=");
    putdec(sync_count - aborts0);
    puts_(" data-aborts=");
    putdec(ec_hist[0x25]);
    puts_(" other=");
    putdec(sync_count - aborts0 - ec_hist[0x25]);
    puts_("\n");
}

// ---- GIC hammering, then a sane setup that must still work ---------------
static void gic_init(void) {
    *(volatile u32 *)(GICD + 0) = (1 << 4) | (1 << 1);        // ARE, EnableGrp1
    *(volatile u32 *)(GICR + 0x14) = 0;                       // wake up
    *(volatile u32 *)(GICR + 0x10080) = 0xffffffff;           // group 1
    *(volatile u32 *)(GICR + 0x10180) = 0xffffffff;           // disable all
    for (int i = 0; i < 32; i += 4) *(volatile u32 *)(GICR + 0x10400 + i) = 0x80808080;
    *(volatile u32 *)(GICR + 0x10100) = 0xffff | (1 << 27);   // SGIs + virtual timer
    *(volatile u32 *)(GICR + 0x10300 + 0x80) = 0xffffffff;    // ICACTIVER0: nothing active
    SYSREG_WRITE("s3_0_c4_c6_0", 0xf0);                       // ICC_PMR_EL1
    SYSREG_WRITE("s3_0_c12_c12_4", 0);                        // ICC_CTLR_EL1: EOImode 0
    SYSREG_WRITE("s3_0_c12_c9_0", 0);                         // ICC_AP1R0_EL1
    SYSREG_WRITE("s3_0_c12_c12_7", 1);                        // ICC_IGRPEN1_EL1
}

static void scenario_gic(void) {
    for (int i = 0; i < 40000; i++) {
        u64 r = rnd();
        u64 off = (r >> 8) % 0x10000 & ~3UL;
        if (r & 1)
            *(volatile u32 *)(GICD + off) = rnd();
        else
            *(volatile u32 *)(GICR + ((r >> 30) % 0x20000 & ~3UL)) = rnd();
        if ((r & 0x70) == 0) SYSREG_WRITE("s3_0_c12_c11_5", rnd());  // random SGIs
        if ((r & 0x1f0) == 0) (void)SYSREG_READ("s3_0_c12_c12_0");  // random acks
        if ((r & 0x1f0) == 0x10) SYSREG_WRITE("s3_0_c12_c12_1", rnd() & 0x3ff);
    }
    // Drain whatever the chaos left active or pending, then set up properly.
    SYSREG_WRITE("s3_0_c12_c12_7", 0);
    *(volatile u32 *)(GICD + 0x180) = 0xffffffff;
    *(volatile u32 *)(GICD + 0x184) = 0xffffffff;
    *(volatile u32 *)(GICD + 0x188) = 0xffffffff;
    *(volatile u32 *)(GICR + 0x10280) = 0xffffffff;           // clear pending SGI/PPI
    gic_init();
    u64 before = irq_count;
    __asm__ volatile("msr daifclr, #2");
    for (int i = 0; i < 100; i++) {
        SYSREG_WRITE("s3_0_c12_c11_5", ((u64)(i % 16) << 24) | 1);   // SGI to self
        for (volatile int d = 0; d < 50; d++) {}
    }
    u64 sgis = irq_count - before;
    // The virtual timer: fires once in about a millisecond, wakes WFI.
    u64 t0 = irq_count;
    SYSREG_WRITE("cntv_tval_el0", 62500);
    SYSREG_WRITE("cntv_ctl_el0", 1);
    while (irq_count == t0) __asm__ volatile("wfi");
    __asm__ volatile("msr daifset, #2");
    puts_("HOSTILE gic sgis=");
    putdec(sgis);
    puts_("/100 timer=");
    putdec(irq_count - t0);
    puts_("\n");
}

// ---- the virtual timer: interrupts on time --------------------------------
// Part 1: the guest polls CNTV_CTL until ISTATUS says the timer fired; the
// interrupt must then be taken before the next few instructions (the line
// and ISTATUS agree). Part 2: the guest spins on plain arithmetic and memory
// (no timer register reads) while the timer fires; the handler records how
// long after the deadline it ran. Prints agree=N/100 and the latency's
// p50/p99/max in microseconds (bench/timer.sh compares them with QEMU).
static void sort_u64(u64 *v, int n) {
    for (int i = 1; i < n; i++) {
        u64 x = v[i];
        int j = i;
        for (; j > 0 && v[j - 1] > x; j--) v[j] = v[j - 1];
        v[j] = x;
    }
}

static void scenario_timer(void) {
    gic_init();
    __asm__ volatile("msr daifclr, #2");
    u64 hz = SYSREG_READ("cntfrq_el0");
    int agree = 0;
    for (int i = 0; i < 100; i++) {
        u64 before = irq_count;
        timer_cval = SYSREG_READ("cntvct_el0") + hz / 10000;   // 100 us
        SYSREG_WRITE("cntv_cval_el0", timer_cval);
        SYSREG_WRITE("cntv_ctl_el0", 1);
        while (!(SYSREG_READ("cntv_ctl_el0") & 4) && irq_count == before) {}
        __asm__ volatile("isb");
        if (irq_count != before) agree++;
        SYSREG_WRITE("cntv_ctl_el0", 0);
    }
    enum { N = 64 };
    static u64 lat[N];
    for (int i = 0; i < N; i++) {
        u64 before = irq_count;
        timer_cval = SYSREG_READ("cntvct_el0") + hz / 1000;    // 1 ms
        SYSREG_WRITE("cntv_cval_el0", timer_cval);
        SYSREG_WRITE("cntv_ctl_el0", 1);
        u64 spin = 0;
        while (irq_count == before) spin = spin * 6364136223846793005UL + 1;
        __asm__ volatile("" : : "r"(spin));
        lat[i] = timer_latency * 1000000 / hz;
    }
    __asm__ volatile("msr daifset, #2");
    sort_u64(lat, N);
    puts_("HOSTILE timer agree=");
    putdec(agree);
    puts_("/100 latency_us p50=");
    putdec(lat[N / 2]);
    puts_(" p99=");
    putdec(lat[N * 99 / 100]);
    puts_(" max=");
    putdec(lat[N - 1]);
    puts_("\n");
}

// ---- page tables ---------------------------------------------------------
static u64 l1[512] __attribute__((aligned(4096)));
static u64 l2_ram[512] __attribute__((aligned(4096)));
static u64 scratch_l2[512] __attribute__((aligned(4096)));
static u64 scratch_l3[4][512] __attribute__((aligned(4096)));

#define VALID 1UL
#define TABLE 3UL
#define AF (1UL << 10)
#define SH_INNER (3UL << 8)
#define ATTR_DEVICE (0UL << 2)
#define ATTR_NORMAL (1UL << 2)
#define AP_EL0 (1UL << 6)
#define AP_RO (1UL << 7)
#define PXN (1UL << 53)
#define UXN (1UL << 54)

#define USER_CODE 0x42000000UL      // EL0 read+execute
#define USER_CODE_ALIAS 0x42200000UL // EL1 read+write view of the same memory
#define USER_DATA 0x42400000UL      // EL0 read+write

static void mmu_on(void) {
    l1[0] = 0 | VALID | AF | ATTR_DEVICE | PXN | UXN;
    l1[1] = (u64)l2_ram | TABLE;
    l1[2] = (u64)scratch_l2 | TABLE;
    for (u64 i = 0; i < 512; i++)
        l2_ram[i] = (RAM + (i << 21)) | VALID | AF | SH_INNER | ATTR_NORMAL | UXN;
    l2_ram[(USER_CODE - RAM) >> 21] = USER_CODE | VALID | AF | SH_INNER | ATTR_NORMAL | AP_EL0 | AP_RO | PXN;
    l2_ram[(USER_CODE_ALIAS - RAM) >> 21] = USER_CODE | VALID | AF | SH_INNER | ATTR_NORMAL | PXN | UXN;
    l2_ram[(USER_DATA - RAM) >> 21] = USER_DATA | VALID | AF | SH_INNER | ATTR_NORMAL | AP_EL0 | PXN | UXN;
    SYSREG_WRITE("mair_el1", 0xff00);
    // T0SZ = 25 (39-bit VA), 4K granule, EPD1, 40-bit IPS.
    SYSREG_WRITE("tcr_el1", 25UL | (1UL << 23) | (2UL << 32));
    SYSREG_WRITE("ttbr0_el1", (u64)l1);
    __asm__ volatile("tlbi vmalle1; dsb sy; isb");
    // M on; nTWI, nTWE, UCT, DZE, UCI, UMA all off so EL0 traps on everything.
    SYSREG_WRITE("sctlr_el1", 0x30d00800UL | 1);
    SYSREG_WRITE("cntkctl_el1", 0);
}

static const char *fsc_name(u64 fsc) {
    switch (fsc & 0x3c) {
    case 0x04: return "translation";
    case 0x08: return "access-flag";
    case 0x0c: return "permission";
    case 0x00: return "address-size";
    case 0x10: return "external";
    case 0x14: return "external-walk";
    default: return "other";
    }
}

static void scenario_pagetables(void) {
    mmu_on();
    u64 kinds[8] = {0};
    u64 faults0 = sync_count, n = 20000;
    for (u64 i = 0; i < n; i++) {
        // Scribble a few descriptors: garbage, blocks, tables to random or
        // real places, the table itself.
        for (int k = 0; k < 4; k++) {
            u64 r = rnd(), d;
            switch (r & 7) {
            case 0: d = rnd(); break;
            case 1: d = (rnd() & 0xffffffffff000UL) | TABLE; break;
            case 2: d = (u64)scratch_l3[(r >> 3) & 3] | TABLE; break;
            case 3: d = (u64)scratch_l2 | TABLE; break;
            case 4: d = ((rnd() % (1UL << 41)) & ~0x1fffffUL) | VALID | (rnd() & 0xfff0000000000ffcUL); break;
            case 5: d = (RAM + ((r >> 8) % 64) * (2UL << 20)) | VALID | AF | ATTR_NORMAL | (r & AP_RO); break;
            default: d = 0; break;
            }
            scratch_l2[(r >> 12) & 511] = d;
            scratch_l3[(r >> 21) & 3][(r >> 23) & 511] = rnd() | (r & 1);
        }
        __asm__ volatile("dsb sy; tlbi vmalle1; dsb sy; isb");
        u64 va = 0x80000000UL + (rnd() % (1UL << 30));
        u64 before = sync_count;
        if (i & 1)
            *(volatile u64 *)(va & ~7UL) = i;
        else
            (void)*(volatile u64 *)(va & ~7UL);
        if (sync_count != before) {
            u64 fsc = last_esr & 0x3f;
            const char *name = fsc_name(fsc);
            (void)name;
            kinds[(fsc >> 2) & 7]++;
        }
    }
    // Clean up so later code is not affected by the scribbles.
    for (int k = 0; k < 512; k++) scratch_l2[k] = 0;
    __asm__ volatile("dsb sy; tlbi vmalle1; dsb sy; isb");
    puts_("HOSTILE pagetables accesses=");
    putdec(n);
    puts_(" faults=");
    putdec(sync_count - faults0);
    const char *names[8] = {"address-size", "translation", "access-flag", "permission",
                            "external", "external-walk", "k6", "k7"};
    for (int k = 0; k < 8; k++) {
        if (!kinds[k]) continue;
        puts_(" ");
        puts_(names[k]);
        puts_("=");
        putdec(kinds[k]);
    }
    puts_("\n");
}

// ---- undefined and privileged instructions --------------------------------
static u32 el1_code[16] __attribute__((aligned(64)));

/// Runs one instruction at EL1 (faults are skipped); returns the EC taken or 0xff.
static u64 try_el1(u32 insn) {
    el1_code[0] = insn;
    el1_code[1] = 0xd65f03c0;  // ret
    __asm__ volatile("dc cvau, %0; dsb ish; ic ivau, %0; dsb ish; isb" ::"r"(el1_code) : "memory");
    u64 before = sync_count;
    ((void (*)(void))el1_code)();
    return sync_count == before ? 0xff : (last_esr >> 26) & 63;
}

/// Runs one instruction at EL0 followed by SVC; returns the ESR taken.
static u64 try_el0(u32 insn) {
    volatile u32 *slot = (volatile u32 *)(USER_CODE_ALIAS + 0x1000);
    slot[0] = insn;
    slot[1] = 0xd4000001;  // svc #0
    __asm__ volatile("ic iallu; dsb ish; isb" ::: "memory");
    return run_el0(USER_CODE + 0x1000, USER_DATA + 0x10000);
}

struct expect { u32 insn; u32 ec; const char *what; };

static const struct expect el0_cases[] = {
    {0xd5181000, 0x00, "msr sctlr_el1"},
    {0xd5382000, 0x00, "mrs ttbr0_el1"},
    {0xd69f03e0, 0x00, "eret"},
    {0xd50342df, 0x00, "msr daifset"},
    {0xd508871f, 0x00, "tlbi vmalle1"},
    {0xd5087800, 0x00, "at s1e1r"},
    {0xd5087620, 0x00, "dc ivac"},
    {0xd508751f, 0x00, "ic iallu"},
    {0xd5380000, 0x00, "mrs midr_el1"},
    {0xd4000002, 0x00, "hvc"},
    {0xd4000003, 0x00, "smc"},
    {0x00000000, 0x00, "udf"},
    {0xd503207f, 0x01, "wfi (nTWI=0)"},
    {0xd503205f, 0x01, "wfe (nTWE=0)"},
    {0xd53be040, 0x18, "mrs cntvct_el0 (EL0VCTEN=0)"},
    {0xd53b0020, 0x18, "mrs ctr_el0 (UCT=0)"},
    {0xd50b7420, 0x18, "dc zva (DZE=0)"},
    {0xd4000001, 0x15, "svc"},
    {0xd4200020, 0x3c, "brk"},
    {0xf94003c0, 0x24, "ldr from EL1-only memory"},
    {0xd63f0000, 0x20, "blr to device memory"},
};

static const struct expect el1_cases[] = {
    {0xd53c1100, 0x00, "mrs hcr_el2"},
    {0xd51cc000, 0x00, "msr vbar_el2"},
    {0xd538f000, 0x00, "mrs s3_0_c15_c0_0"},
    {0xd4400000, 0x00, "hlt"},
    {0x00000000, 0x00, "udf"},
    {0xd4200000, 0x3c, "brk"},
};

static int branches_to_itself(u32 w) {
    if ((w & 0x7c000000) == 0x14000000) return (w & 0x03ffffff) == 0;  // b, bl
    if ((w & 0xff000010) == 0x54000000) return ((w >> 5) & 0x7ffff) == 0; // b.cond
    if ((w & 0x7e000000) == 0x34000000) return ((w >> 5) & 0x7ffff) == 0; // cbz/cbnz
    if ((w & 0x7e000000) == 0x36000000) return ((w >> 5) & 0x3fff) == 0;  // tbz/tbnz
    return 0;
}

static void scenario_undef(void) {
    mmu_on();
    // Fill the user code page with SVCs so any branch inside it comes back.
    volatile u32 *page = (volatile u32 *)USER_CODE_ALIAS;
    for (int i = 0; i < 2048; i++) page[i] = 0xd4000001;
    u64 ok1 = 0, n1 = sizeof el1_cases / sizeof el1_cases[0];
    for (u64 i = 0; i < n1; i++) {
        u64 ec = try_el1(el1_cases[i].insn);
        if (ec == el1_cases[i].ec) ok1++;
        else { puts_("HOSTILE mismatch EL1 "); puts_(el1_cases[i].what); puts_(" ec="); puthex(ec); puts_("\n"); }
    }
    u64 ok0 = 0, n0 = sizeof el0_cases / sizeof el0_cases[0];
    for (u64 i = 0; i < n0; i++) {
        u64 esr = try_el0(el0_cases[i].insn);
        if (((esr >> 26) & 63) == el0_cases[i].ec) ok0++;
        else { puts_("HOSTILE mismatch EL0 "); puts_(el0_cases[i].what); puts_(" esr="); puthex(esr); puts_("\n"); }
    }
    // CPACR_EL1.FPEN: 00 traps FP at EL1 and EL0, 01 at EL0 only, 11 never.
    u64 okfp = 0, nfp = 4;
    const u32 fmov = 0x9e670000;  // fmov d0, x0
    SYSREG_WRITE("cpacr_el1", 0);
    okfp += try_el1(fmov) == 0x07;
    SYSREG_WRITE("cpacr_el1", 1UL << 20);
    okfp += try_el1(fmov) == 0xff;
    okfp += ((try_el0(fmov) >> 26) & 63) == 0x07;
    SYSREG_WRITE("cpacr_el1", 3UL << 20);
    okfp += ((try_el0(fmov) >> 26) & 63) == 0x15;  // runs, then the SVC
    u64 hist[64] = {0}, n = 20000;
    for (u64 i = 0; i < n; i++) {
        u32 w = (u32)rnd();
        if (branches_to_itself(w)) continue;
        hist[(try_el0(w) >> 26) & 63]++;
    }
    puts_("HOSTILE undef el1=");
    putdec(ok1); puts_("/"); putdec(n1);
    puts_(" el0=");
    putdec(ok0); puts_("/"); putdec(n0);
    puts_(" fp-trap=");
    putdec(okfp); puts_("/"); putdec(nfp);
    puts_(" random-el0=");
    putdec(n);
    for (int ec = 0; ec < 64; ec++) {
        if (!hist[ec]) continue;
        puts_(" ec"); puthex(ec); puts_("="); putdec(hist[ec]);
    }
    puts_("\n");
}

// ---- an unusable vector table ---------------------------------------------
static void scenario_novectors(void) {
    puts_("HOSTILE novectors: pointing VBAR_EL1 outside memory, then SVC\n");
    SYSREG_WRITE("vbar_el1", 0xfffff0000000UL);
    __asm__ volatile("svc #0");
    puts_("HOSTILE novectors: still running?!\n");
}

// ---- hostile virtio drivers ------------------------------------------------
#define VIRTIO_BASE 0x0a000000UL
static volatile u32 *vio;  // the transport being driven
static u64 vdesc[8][2] __attribute__((aligned(16)));
static unsigned short vavail[3 + 8] __attribute__((aligned(4096)));
// The device writes these behind the compiler's back: volatile.
static volatile u32 vused[2 + 2 * 8] __attribute__((aligned(4096)));
static volatile u8 vbuf[4096] __attribute__((aligned(4096)));
static unsigned short vnext;
/// The queue virtio_init sets up and submit notifies.
static u32 vq;

static u32 vr(u32 off) { return vio[off / 4]; }
static void vw(u32 off, u32 v) { vio[off / 4] = v; }

/// Resets and initialises the device with one 8-entry queue; returns whether FEATURES_OK stuck.
static int virtio_init(void) {
    vw(0x70, 0);
    vw(0x70, 1 | 2);
    vw(0x24, 1); vw(0x20, 1);        // VIRTIO_F_VERSION_1
    vw(0x24, 0); vw(0x20, 0);
    vw(0x70, 1 | 2 | 8);
    if (!(vr(0x70) & 8)) return 0;
    for (int i = 0; i < 11; i++) vavail[i] = 0;
    for (int i = 0; i < 18; i++) vused[i] = 0;
    vnext = 0;
    vw(0x30, vq);
    vw(0x38, 8);
    vw(0x80, (u32)(u64)vdesc); vw(0x84, (u32)((u64)vdesc >> 32));
    vw(0x90, (u32)(u64)vavail); vw(0x94, 0);
    vw(0xa0, (u32)(u64)vused); vw(0xa4, 0);
    vw(0x44, 1);
    vw(0x70, 1 | 2 | 8 | 4);
    return 1;
}

static void set_desc(int i, u64 addr, u32 len, unsigned short flags, unsigned short next) {
    vdesc[i][0] = addr;
    vdesc[i][1] = len | (u64)flags << 32 | (u64)next << 48;
}

/// Offers chain `head` (or advances the avail index by `bump`) and notifies,
/// then waits (up to `patience` polls: devices may complete on an I/O
/// thread) for the buffer to come back or the device to want a reset.
/// Returns 1 if the buffer came back, 0 if not, -1 if the device wants a reset.
static int submit_wait(unsigned short head, unsigned short bump, u64 patience) {
    vavail[2 + (vnext % 8)] = head;
    vnext += bump;
    __asm__ volatile("dmb sy" ::: "memory");
    vavail[1] = vnext;
    __asm__ volatile("dmb sy" ::: "memory");
    u32 used_before = vused[0] >> 16;
    vw(0x50, vq);
    for (u64 i = 0; i < patience; i++) {
        if (vr(0x70) & 0x40) {
            u32 isr = vr(0x60);
            vw(0x64, isr);
            return (isr & 2) ? -1 : -2;
        }
        if ((vused[0] >> 16) != used_before) {
            vw(0x64, vr(0x60));
            return 1;
        }
    }
    return 0;
}

static int submit(unsigned short head, unsigned short bump) {
    return submit_wait(head, bump, 2000000);
}

static volatile u32 *find_virtio(u32 id) {
    for (int i = 0; i < 8; i++) {
        volatile u32 *t = (volatile u32 *)(VIRTIO_BASE + 0x200UL * i);
        if (t[0] == 0x74726976 && t[2] == id) return t;
    }
    return 0;
}

struct vcase { const char *what; int expect; };

static void scenario_virtio(void) {
    u64 ok = 0, total = 0;
    vio = find_virtio(4);
    if (!vio) { puts_("HOSTILE virtio: no rng device\n"); return; }
    static const struct vcase cases[] = {
        {"good request", 1},
        {"descriptor loop", -1},
        {"buffer outside memory", -1},
        {"oversized length", -1},
        {"index out of range", -1},
        {"device-readable buffer for rng", -1},
        {"avail index ran ahead", -1},
        {"indirect descriptor", -1},
        {"good request after all that", 1},
    };
    for (u64 c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (!virtio_init()) { puts_("HOSTILE virtio: FEATURES_OK refused\n"); return; }
        unsigned short head = 0, bump = 1;
        switch (c) {
        case 0: case 8: set_desc(0, (u64)vbuf, 64, 2, 0); break;
        case 1: set_desc(0, (u64)vbuf, 64, 2 | 1, 1); set_desc(1, (u64)vbuf, 64, 2 | 1, 0); break;
        case 2: set_desc(0, 0x100000000000UL, 64, 2, 0); break;
        case 3: set_desc(0, (u64)vbuf, 0xffffffff, 2, 0); break;
        case 4: set_desc(0, (u64)vbuf, 64, 2 | 1, 77); break;
        case 5: set_desc(0, (u64)vbuf, 64, 0, 0); break;
        case 6: set_desc(0, (u64)vbuf, 64, 2, 0); bump = 50; break;
        case 7: set_desc(0, (u64)vbuf, 64, 4 | 2, 0); break;
        }
        int r = submit(head, bump);
        total++;
        if (r == cases[c].expect) ok++;
        else { puts_("HOSTILE virtio mismatch: "); puts_(cases[c].what); puts_(" got "); putdec((u64)(r + 10)); puts_("\n"); }
    }
    // The block device: a request without a status byte, then garbage.
    vio = find_virtio(2);
    if (vio) {
        static u8 hdr[16];
        virtio_init();
        set_desc(0, (u64)hdr, 16, 0, 0);
        total++;
        if (submit(0, 1) == -1) ok++; else puts_("HOSTILE virtio mismatch: blk without status\n");
        // A read far past the end of the disk: an I/O error status, no reset.
        virtio_init();
        hdr[0] = 0; hdr[8] = 0xff; hdr[9] = 0xff; hdr[10] = 0xff; hdr[11] = 0x7f;
        set_desc(0, (u64)hdr, 16, 1, 1);
        set_desc(1, (u64)vbuf, 512, 2 | 1, 2);
        set_desc(2, (u64)vbuf + 1024, 1, 2, 0);
        vbuf[1024] = 0x77;
        total++;
        if (submit(0, 1) == 1 && vbuf[1024] == 1) ok++; else puts_("HOSTILE virtio mismatch: blk read past end\n");
        for (int i = 0; i < 3000; i++) {
            if (!(vr(0x70) & 4) || (vr(0x70) & 0x40)) virtio_init();
            for (int d = 0; d < 8; d++) {
                u64 r = rnd();
                set_desc(d, (r & 1) ? (u64)vbuf + (r >> 52) : rnd(), (u32)(r >> 20) % 9000, (r >> 8) & 7, (r >> 40) % 9);
            }
            submit_wait((unsigned short)(rnd() % 9), (unsigned short)(1 + (rnd() % 3 == 0 ? rnd() % 20 : 0)), 2000);
        }
    }
    // The network device's transmit queue and the vsock device's.
    for (int dev = 0; dev < 2; dev++) {
        vio = find_virtio(dev == 0 ? 1 : 19);
        if (!vio) continue;
        vq = 1;
        for (int i = 0; i < 64; i++) vbuf[i] = 0;
        virtio_init();
        set_desc(0, (u64)vbuf, 128, 2, 0);  // device-writable transmit buffer
        total++;
        if (submit(0, 1) == -1) ok++; else puts_("HOSTILE virtio mismatch: writable tx buffer\n");
        virtio_init();
        if (dev == 0) set_desc(0, (u64)vbuf, 4000, 0, 0);  // a frame beyond the MTU
        else { vbuf[24] = 0xe8; vbuf[25] = 3; set_desc(0, (u64)vbuf, 54, 0, 0); }  // len 1000 in 10 bytes
        total++;
        if (submit(0, 1) == -1) ok++; else puts_("HOSTILE virtio mismatch: oversized tx packet\n");
        vbuf[24] = 0; vbuf[25] = 0;
        virtio_init();
        set_desc(0, (u64)vbuf, dev == 0 ? 12 + 60 : 44, 0, 0);  // a plain frame / an RST-worthy packet
        total++;
        if (submit(0, 1) == 1) ok++; else puts_("HOSTILE virtio mismatch: good tx packet\n");
        for (int i = 0; i < 2000; i++) {
            vq = rnd() & 1;
            if (!(vr(0x70) & 4) || (vr(0x70) & 0x40)) virtio_init();
            for (int d = 0; d < 8; d++) {
                u64 r = rnd();
                set_desc(d, (r & 1) ? (u64)vbuf + (r >> 52) : rnd(), (u32)(r >> 20) % 9000, (r >> 8) & 7, (r >> 40) % 9);
            }
            submit_wait((unsigned short)(rnd() % 9), (unsigned short)(1 + (rnd() % 3 == 0 ? rnd() % 20 : 0)), 2000);
        }
        vq = 0;
    }
    puts_("HOSTILE virtio cases=");
    putdec(ok); puts_("/"); putdec(total);
    puts_("\n");
}

// ---- SMP: one CPU hammers the GIC and broadcasts TLB and cache maintenance
// while the others work -----------------------------------------------------
// CPU 1 writes random values all over the distributor and redistributors,
// sends random SGIs (target lists and broadcast) and runs TLBI VMALLE1IS,
// IC IALLUIS and DSB in a loop; CPUs 0, 2 and 3 meanwhile run a checksum
// loop and LSE increments of a shared counter, whose results must be
// exact. Needs --cpus 4. Prints started=3/3 work=ok|BAD atomics=N/300000.
void secondary_entry(void);
void secondary_main(u64 cpu);
#define WORK_STEPS 20000000UL
#define ATOMIC_INCS 100000UL
static volatile u64 smp_started[4], smp_done[4], smp_sum[4], smp_hammered;
static volatile u64 smp_counter, smp_stop;

static u64 smp_work(u64 cpu) {
    u64 x = 0x243f6a8885a308d3UL, sum = 0;
    for (u64 i = 0; i < WORK_STEPS; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        sum += x >> 3;
        if (i < ATOMIC_INCS)
            __asm__ volatile(".arch armv8.1-a\nstadd %0, [%1]" : : "r"(1UL), "r"(&smp_counter) : "memory");
    }
    smp_sum[cpu] = sum;
    return sum;
}

static void smp_hammer(void) {
    u64 r = 0x6a09e667f3bcc908UL, n = 0;
    while (!smp_stop) {
        r ^= r << 13; r ^= r >> 7; r ^= r << 17;
        if (r & 1) *(volatile u32 *)(GICD + ((r >> 8) % 0x10000 & ~3UL)) = (u32)(r >> 20);
        else *(volatile u32 *)(GICR + ((r >> 30) % 0x80000 & ~3UL)) = (u32)(r >> 20);
        SYSREG_WRITE("s3_0_c12_c11_5", r & (0xfUL << 24 | 1UL << 40 | 0xf));   // SGIs
        __asm__ volatile("tlbi vmalle1is\n dsb ish\n ic ialluis\n dsb ish\n isb" ::: "memory");
        n++;
    }
    smp_hammered = n;
}

void secondary_main(u64 cpu) {
    smp_started[cpu] = 1;
    if (cpu == 1) smp_hammer();
    else smp_work(cpu);
    smp_done[cpu] = 1;
}

static void scenario_smp(void) {
    u64 on = 0;
    for (u64 cpu = 1; cpu < 4; cpu++)
        on += hvc_call(0xc4000003, cpu, (u64)secondary_entry, cpu) == 0;   // CPU_ON
    u64 want = smp_work(0);
    u64 t0 = SYSREG_READ("cntvct_el0"), limit = 62500000UL * 120;   // 2 minutes
    while ((!smp_done[2] || !smp_done[3]) && SYSREG_READ("cntvct_el0") - t0 < limit) {}
    smp_stop = 1;
    while (!smp_done[1] && SYSREG_READ("cntvct_el0") - t0 < limit) {}
    int ok = smp_done[2] && smp_done[3] && smp_sum[2] == want && smp_sum[3] == want;
    puts_("HOSTILE smp started=");
    putdec(smp_started[1] + smp_started[2] + smp_started[3]);
    puts_("/3 on=");
    putdec(on);
    puts_(" work=");
    puts_(ok ? "ok" : "BAD");
    puts_(" atomics=");
    putdec(smp_counter);
    puts_("/300000 hammer=");
    putdec(smp_hammered);
    puts_("\n");
}

// Finds "hostile=NAME" in the device tree's bootargs.
static int scenario_is(const u8 *dtb, const char *name) {
    u32 total = __builtin_bswap32(*(const u32 *)(dtb + 4));
    if (total > (1 << 21)) return 0;
    for (u32 i = 0; i + 8 < total; i++) {
        const char *k = "hostile=";
        u32 j = 0;
        while (k[j] && dtb[i + j] == (u8)k[j]) j++;
        if (k[j]) continue;
        u32 m = 0;
        while (name[m] && dtb[i + j + m] == (u8)name[m]) m++;
        u8 end = dtb[i + j + m];
        if (!name[m] && (end == 0 || end == ' ')) return 1;
    }
    return 0;
}

void main(const u8 *dtb) {
    puts_("HOSTILE start\n");
    seed ^= (u64)dtb;
    if (scenario_is(dtb, "mmio")) scenario_mmio();
    else if (scenario_is(dtb, "gic")) scenario_gic();
    else if (scenario_is(dtb, "timer")) scenario_timer();
    else if (scenario_is(dtb, "pagetables")) scenario_pagetables();
    else if (scenario_is(dtb, "undef")) scenario_undef();
    else if (scenario_is(dtb, "novectors")) scenario_novectors();
    else if (scenario_is(dtb, "virtio")) scenario_virtio();
    else if (scenario_is(dtb, "smp")) scenario_smp();
    else puts_("HOSTILE no scenario (hostile=mmio|gic|timer|pagetables|undef|novectors|virtio|smp)\n");
    puts_("HOSTILE-DONE\n");
}
