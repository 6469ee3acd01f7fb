/* Differential-test harness, run under qemu-aarch64.
 *
 * Reads test cases from stdin; for each one it loads the complete register
 * state, executes one instruction (followed by BRKs) in a fixed code page,
 * catches the signal that ends it (SIGTRAP from the BRK after it, or the
 * instruction's own SIGILL/SIGSEGV/SIGBUS/SIGTRAP) and writes the captured
 * state to stdout. The layout of the structures is shared with
 * crates/difftest/src/protocol.rs. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include <asm/sigcontext.h>

#define SCRATCH_ADDR 0x10000000UL
#define SCRATCH_SIZE 0x2000UL
#define CODE_ADDR 0x20000000UL
#define INSN_OFF 0x800
#define STATE_OFF 0xc00
#define BRK_FILL 0xd4200020u /* brk #1 */

struct regs {
    uint64_t x[31];
    uint64_t sp, nzcv, fpcr, fpsr, tpidr;
    __uint128_t v[32];
};

struct case_in {
    struct regs r;
    uint32_t insn, insn2;
    uint64_t mem_seed;
};

struct case_out {
    uint32_t sig, pad;
    uint64_t pc, fault_addr, mem_hash;
    struct regs r;
};

extern char tramp_start[], tramp_end[];

static sigjmp_buf jump_back;
static struct case_out out;
static uint64_t harness_tpidr;

static void on_signal(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    uint64_t tp;
    __asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
    __asm__ volatile("msr tpidr_el0, %0" ::"r"(harness_tpidr));
    out.sig = sig;
    out.pc = uc->uc_mcontext.pc;
    out.fault_addr = (uint64_t)si->si_addr;
    for (int i = 0; i < 31; i++) out.r.x[i] = uc->uc_mcontext.regs[i];
    out.r.sp = uc->uc_mcontext.sp;
    out.r.nzcv = uc->uc_mcontext.pstate & 0xf0000000UL;
    out.r.tpidr = tp;
    struct _aarch64_ctx *h = (struct _aarch64_ctx *)uc->uc_mcontext.__reserved;
    while (h->magic) {
        if (h->magic == FPSIMD_MAGIC) {
            struct fpsimd_context *f = (struct fpsimd_context *)h;
            out.r.fpsr = f->fpsr;
            out.r.fpcr = f->fpcr;
            memcpy(out.r.v, f->vregs, sizeof out.r.v);
        }
        h = (struct _aarch64_ctx *)((char *)h + h->size);
    }
    siglongjmp(jump_back, 1);
}

/* The same generator as difftest's Rust side: xorshift64* filling words. */
static void fill_scratch(uint64_t seed) {
    uint64_t s = seed | 1, *p = (uint64_t *)SCRATCH_ADDR;
    for (unsigned i = 0; i < SCRATCH_SIZE / 8; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        p[i] = s * 0x2545F4914F6CDD1DULL;
    }
}

static uint64_t hash_scratch(void) {
    uint64_t h = 0xcbf29ce484222325ULL;
    const uint8_t *p = (const uint8_t *)SCRATCH_ADDR;
    for (unsigned i = 0; i < SCRATCH_SIZE; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static int read_full(void *buf, size_t n) {
    char *p = buf;
    while (n) {
        ssize_t r = read(0, p, n);
        if (r <= 0) return 0;
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

static void write_full(const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t r = write(1, p, n);
        if (r <= 0) exit(3);
        p += r;
        n -= (size_t)r;
    }
}

int main(void) {
    if (mmap((void *)SCRATCH_ADDR, SCRATCH_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) return 2;
    uint32_t *code = mmap((void *)CODE_ADDR, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (code == MAP_FAILED) return 2;
    for (int i = 0; i < 1024; i++) code[i] = BRK_FILL;
    memcpy(code, tramp_start, (size_t)(tramp_end - tramp_start));

    static char altstack[65536];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    int sigs[] = {SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, 0);
    __asm__ volatile("mrs %0, tpidr_el0" : "=r"(harness_tpidr));

    static uint32_t pristine[INSN_OFF / 4];
    memcpy(pristine, code, sizeof pristine);

    /* Tell the other side what the code page holds before any state is written. */
    write_full(code, 4096);

    struct case_in in;
    while (read_full(&in, sizeof in)) {
        fill_scratch(in.mem_seed);
        memcpy((char *)code + STATE_OFF, &in.r, sizeof in.r);
        code[INSN_OFF / 4] = in.insn;
        code[INSN_OFF / 4 + 1] = in.insn2;
        __builtin___clear_cache((char *)code, (char *)code + 4096);
        memset(&out, 0, sizeof out);
        if (sigsetjmp(jump_back, 1) == 0) {
            ((void (*)(void))code)();
        }
        __asm__ volatile("msr fpcr, xzr");
        /* A case that wrote over the trampoline would poison every later case: stop loudly. */
        if (memcmp(code, pristine, sizeof pristine) != 0) return 4;
        out.mem_hash = hash_scratch();
        write_full(&out, sizeof out);
    }
    return 0;
}
