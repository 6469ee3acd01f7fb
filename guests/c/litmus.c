/*
 * litmus: the classic memory-model litmus tests, run many times on
 * threads pinned to different CPUs, each with and without the barriers
 * that forbid its relaxed outcome on AArch64.
 *
 *   litmus [RUNS]          (default 1000000 runs of each test)
 *
 * For every test it prints how often each outcome was seen; a forbidden
 * outcome seen even once makes the line say FORBIDDEN and the program
 * exit 1. The relaxed outcomes of the tests without barriers are allowed
 * by the architecture and only reported ("relaxed=N"): on an x86-64 host
 * only SB's shows (TSO lets a load pass an earlier store).
 *
 * Tests (x, y start at 0; rN are loads):
 *   MP     T0: x=1; y=1           T1: r0=y; r1=x      relaxed r0=1 r1=0
 *   SB     T0: x=1; r0=y          T1: y=1; r1=x       relaxed r0=0 r1=0
 *   LB     T0: r0=x; y=1          T1: r1=y; x=1       relaxed r0=1 r1=1
 *   2+2W   T0: x=1; y=2           T1: y=1; x=2        relaxed x=1 y=1 at the end
 *   CoRR   T0: x=1                T1: r0=x; r1=x      r0=1 r1=0 forbidden always
 *   IRIW   T0: x=1  T1: y=1  T2: r0=x; r1=y  T3: r2=y; r3=x
 *                                                     relaxed r0=1 r1=0 r2=1 r3=0
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#ifndef HWCAP_ATOMICS
#define HWCAP_ATOMICS (1 << 8)
#endif

#define LINE __attribute__((aligned(64)))

struct shared {
    uint64_t x LINE;
    uint64_t y LINE;
    uint64_t r[4] LINE;
    uint32_t count LINE;
    uint32_t sense LINE;
};

static struct shared s;
/* Whether the CPU has the LSE atomics (else the barrier counts with an exclusive pair). */
static int have_lse;

/* A sense-reversing barrier; waiters sleep in WFE on the monitored word. */
static void barrier(int n, uint32_t *mine)
{
    uint32_t want = *mine = !*mine, one = 1, old, now;
    if (have_lse) {
        __asm__ volatile(".arch armv8.1-a\n"
                         "ldaddal %w1, %w0, [%2]\n"
                         : "=&r"(old)
                         : "r"(one), "r"(&s.count)
                         : "memory");
    } else {
        uint32_t failed, sum;
        __asm__ volatile("1: ldaxr %w0, [%3]\n"
                         "   add %w2, %w0, %w4\n"
                         "   stlxr %w1, %w2, [%3]\n"
                         "   cbnz %w1, 1b\n"
                         : "=&r"(old), "=&r"(failed), "=&r"(sum)
                         : "r"(&s.count), "r"(one)
                         : "memory");
    }
    if (old + 1 == (uint32_t)n) {
        s.count = 0;
        __asm__ volatile("stlr %w0, [%1]\n" : : "r"(want), "r"(&s.sense) : "memory");
        return;
    }
    __asm__ volatile("   sevl\n"
                     "1: wfe\n"
                     "   ldaxr %w0, [%1]\n"
                     "   cmp %w0, %w2\n"
                     "   b.ne 1b\n"
                     : "=&r"(now)
                     : "r"(&s.sense), "r"(want)
                     : "memory", "cc");
}

#define STORE(p, v) __asm__ volatile("str %0, [%1]" : : "r"((uint64_t)(v)), "r"(p) : "memory")
#define STLR(p, v) __asm__ volatile("stlr %0, [%1]" : : "r"((uint64_t)(v)), "r"(p) : "memory")
#define LOAD(p, r) __asm__ volatile("ldr %0, [%1]" : "=r"(r) : "r"(p) : "memory")
#define LDAR(p, r) __asm__ volatile("ldar %0, [%1]" : "=r"(r) : "r"(p) : "memory")
#define DMB_ISH() __asm__ volatile("dmb ish" : : : "memory")
#define DMB_ST() __asm__ volatile("dmb ishst" : : : "memory")
#define DMB_LD() __asm__ volatile("dmb ishld" : : : "memory")

/* Barrier kinds a test's threads use between their two accesses. */
enum fence { NONE, FULL, ST_LD, LD, ST, REL_ACQ };

static void between(enum fence f, int writer)
{
    switch (f) {
    case FULL: DMB_ISH(); break;
    case ST_LD: if (writer) DMB_ST(); else DMB_LD(); break;
    case LD: DMB_LD(); break;
    case ST: DMB_ST(); break;
    default: break;
    }
}

enum kind { MP, SB, LB, W22, CORR, IRIW };

struct test {
    const char *name;
    enum kind kind;
    enum fence fence;
    int threads;
    int relaxed_forbidden;
};

static const struct test tests[] = {
    {"MP", MP, NONE, 2, 0},
    {"MP+dmb.st+dmb.ld", MP, ST_LD, 2, 1},
    {"SB", SB, NONE, 2, 0},
    {"SB+dmb.ish", SB, FULL, 2, 1},
    {"SB+stlr+ldar", SB, REL_ACQ, 2, 1},
    {"LB", LB, NONE, 2, 0},
    {"LB+dmb.ld", LB, LD, 2, 1},
    {"2+2W", W22, NONE, 2, 0},
    {"2+2W+dmb.st", W22, ST, 2, 1},
    {"CoRR", CORR, NONE, 2, 1},
    {"IRIW", IRIW, NONE, 4, 0},
    {"IRIW+dmb.ld", IRIW, LD, 4, 1},
};

static const struct test *current;
static long runs;

/* Thread `t`'s part of one run of the current test. */
static void body(int t)
{
    const struct test *c = current;
    uint64_t a = 0, b = 0;
    switch (c->kind) {
    case MP:
        if (t == 0) {
            STORE(&s.x, 1); between(c->fence, 1); STORE(&s.y, 1);
        } else {
            LOAD(&s.y, a); between(c->fence, 0); LOAD(&s.x, b);
            s.r[0] = a, s.r[1] = b;
        }
        break;
    case SB:
        if (c->fence == REL_ACQ) {
            if (t == 0) { STLR(&s.x, 1); LDAR(&s.y, a); }
            else { STLR(&s.y, 1); LDAR(&s.x, a); }
        } else if (t == 0) {
            STORE(&s.x, 1); between(c->fence, 1); LOAD(&s.y, a);
        } else {
            STORE(&s.y, 1); between(c->fence, 1); LOAD(&s.x, a);
        }
        s.r[t] = a;
        break;
    case LB:
        if (t == 0) { LOAD(&s.x, a); between(c->fence, 0); STORE(&s.y, 1); }
        else { LOAD(&s.y, a); between(c->fence, 0); STORE(&s.x, 1); }
        s.r[t] = a;
        break;
    case W22:
        if (t == 0) { STORE(&s.x, 1); between(c->fence, 1); STORE(&s.y, 2); }
        else { STORE(&s.y, 1); between(c->fence, 1); STORE(&s.x, 2); }
        break;
    case CORR:
        if (t == 0) STORE(&s.x, 1);
        else { LOAD(&s.x, a); LOAD(&s.x, b); s.r[0] = a, s.r[1] = b; }
        break;
    case IRIW:
        if (t == 0) STORE(&s.x, 1);
        else if (t == 1) STORE(&s.y, 1);
        else if (t == 2) { LOAD(&s.x, a); between(c->fence, 0); LOAD(&s.y, b); s.r[0] = a, s.r[1] = b; }
        else { LOAD(&s.y, a); between(c->fence, 0); LOAD(&s.x, b); s.r[2] = a, s.r[3] = b; }
        break;
    }
}

/* The outcome of one run as a small number, and whether it is the relaxed one. */
static unsigned outcome(int *relaxed)
{
    switch (current->kind) {
    case MP: *relaxed = s.r[0] == 1 && s.r[1] == 0; return s.r[0] << 1 | s.r[1];
    case SB: *relaxed = s.r[0] == 0 && s.r[1] == 0; return s.r[0] << 1 | s.r[1];
    case LB: *relaxed = s.r[0] == 1 && s.r[1] == 1; return s.r[0] << 1 | s.r[1];
    case W22: *relaxed = s.x == 1 && s.y == 1; return (unsigned)(s.x << 2 | s.y);
    case CORR: *relaxed = s.r[0] == 1 && s.r[1] == 0; return s.r[0] << 1 | s.r[1];
    case IRIW:
        *relaxed = s.r[0] == 1 && s.r[1] == 0 && s.r[2] == 1 && s.r[3] == 0;
        return s.r[0] << 3 | s.r[1] << 2 | s.r[2] << 1 | s.r[3];
    }
    return 0;
}

static long histogram[16];
static long relaxed_seen;

/* A short, varying pause before a thread's part of a run: threads leave
 * the barrier at slightly different times, and varying each one's start
 * makes their accesses meet in every order over many runs. */
static void stagger(uint64_t *seed)
{
    *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (unsigned i = (unsigned)(*seed >> 58); i; i--)
        __asm__ volatile("" ::: "memory");
}

static void *worker(void *arg)
{
    int t = (int)(long)arg, n = current->threads;
    uint32_t sense = 0;
    uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(t + 1);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(t, &set);
    sched_setaffinity(0, sizeof(set), &set);
    for (long i = 0; i < runs; i++) {
        barrier(n, &sense);
        stagger(&seed);
        body(t);
        barrier(n, &sense);
        if (t == 0) {
            int relaxed = 0;
            histogram[outcome(&relaxed) & 15]++;
            relaxed_seen += relaxed;
            s.x = s.y = 0;
            memset(s.r, 0, sizeof(s.r));
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    have_lse = (getauxval(AT_HWCAP) & HWCAP_ATOMICS) != 0;
    runs = argc > 1 ? atol(argv[1]) : 1000000;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int bad = 0;
    if (runs < 1) {
        fprintf(stderr, "usage: litmus [RUNS]\n");
        return 2;
    }
    for (unsigned k = 0; k < sizeof(tests) / sizeof(tests[0]); k++) {
        current = &tests[k];
        if (current->threads > cpus) {
            /* Not a failure: the callers check which tests ran. */
            printf("LITMUS %s skipped: needs %d CPUs, %ld online\n", current->name,
                   current->threads, cpus);
            continue;
        }
        memset(histogram, 0, sizeof(histogram));
        memset(&s, 0, sizeof(s));
        relaxed_seen = 0;
        pthread_t t[4];
        for (long i = 0; i < current->threads; i++)
            pthread_create(&t[i], NULL, worker, (void *)i);
        for (long i = 0; i < current->threads; i++)
            pthread_join(t[i], NULL);
        int forbidden = current->relaxed_forbidden && relaxed_seen > 0;
        printf("LITMUS %s %s runs=%ld relaxed=%ld outcomes:", current->name,
               forbidden ? "FORBIDDEN" : current->relaxed_forbidden ? "ok" : "allowed", runs,
               relaxed_seen);
        for (int o = 0; o < 16; o++)
            if (histogram[o])
                printf(" %x=%ld", o, histogram[o]);
        printf("\n");
        bad |= forbidden;
    }
    printf("LITMUS-DONE %s\n", bad ? "FAIL" : "ok");
    return bad;
}
