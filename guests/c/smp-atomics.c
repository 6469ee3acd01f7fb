/*
 * smp-atomics: one thread per CPU hammering shared counters with every
 * kind of AArch64 atomic, then checking the totals are exact.
 *
 *   smp-atomics [THREADS [ITERATIONS [ROUNDS]]]
 *
 * Each round starts THREADS threads (default: one per online CPU, each
 * pinned to its own CPU) that each do ITERATIONS of:
 *   - an LDXR/STXR increment of a 64-bit counter,
 *   - an LDXP/STXP increment of a pair of 64-bit counters,
 *   - an LSE LDADD of a counter,
 *   - a CAS loop incrementing a counter,
 *   - a ticket spinlock (LDADDA to take a ticket, LDAXR + WFE to wait,
 *     STLR to hand over) around a plain, non-atomic increment.
 * On a CPU without LSE (HWCAP_ATOMICS, e.g. a Cortex-A72 under KVM) the
 * LDADD counter is left out and CAS and LDADDA are exclusive-pair loops.
 * Every counter must end at THREADS * ITERATIONS. Prints one line per
 * round and "SMP-ATOMICS ok ..." at the end; exits 1 on any wrong total.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <unistd.h>

#ifndef HWCAP_ATOMICS
#define HWCAP_ATOMICS (1 << 8)
#endif

/* Whether the CPU has the LSE atomics. */
static int have_lse;

struct counters {
    uint64_t exclusive __attribute__((aligned(64)));
    uint64_t pair[2] __attribute__((aligned(64)));
    uint64_t lse __attribute__((aligned(64)));
    uint64_t cas __attribute__((aligned(64)));
    uint32_t next_ticket __attribute__((aligned(64)));
    uint32_t now_serving __attribute__((aligned(64)));
    uint64_t plain __attribute__((aligned(64)));
};

static struct counters c;
static long iterations;
static pthread_barrier_t start;

static void exclusive_inc(uint64_t *p)
{
    uint64_t v;
    uint32_t failed;
    __asm__ volatile("1: ldxr %0, [%2]\n"
                     "   add %0, %0, #1\n"
                     "   stxr %w1, %0, [%2]\n"
                     "   cbnz %w1, 1b\n"
                     : "=&r"(v), "=&r"(failed)
                     : "r"(p)
                     : "memory");
}

static void pair_inc(uint64_t *p)
{
    uint64_t a, b;
    uint32_t failed;
    __asm__ volatile("1: ldxp %0, %1, [%3]\n"
                     "   add %0, %0, #1\n"
                     "   add %1, %1, #1\n"
                     "   stxp %w2, %0, %1, [%3]\n"
                     "   cbnz %w2, 1b\n"
                     : "=&r"(a), "=&r"(b), "=&r"(failed)
                     : "r"(p)
                     : "memory");
}

static void lse_inc(uint64_t *p)
{
    uint64_t one = 1, old;
    __asm__ volatile(".arch armv8.1-a\n"
                     "ldadd %1, %0, [%2]\n"
                     : "=&r"(old)
                     : "r"(one), "r"(p)
                     : "memory");
}

/* Compare-and-swap: CASAL, or an exclusive-pair loop without LSE. */
static uint64_t cas(uint64_t *p, uint64_t expected, uint64_t want)
{
    uint64_t seen = expected;
    if (have_lse) {
        __asm__ volatile(".arch armv8.1-a\n"
                         "casal %0, %2, [%1]\n"
                         : "+r"(seen)
                         : "r"(p), "r"(want)
                         : "memory");
        return seen;
    }
    uint32_t failed;
    __asm__ volatile("1: ldaxr %0, [%2]\n"
                     "   cmp %0, %3\n"
                     "   b.ne 2f\n"
                     "   stlxr %w1, %4, [%2]\n"
                     "   cbnz %w1, 1b\n"
                     "2:\n"
                     : "=&r"(seen), "=&r"(failed)
                     : "r"(p), "r"(expected), "r"(want)
                     : "memory", "cc");
    return seen;
}

static void cas_inc(uint64_t *p)
{
    uint64_t seen = __atomic_load_n(p, __ATOMIC_RELAXED);
    for (;;) {
        uint64_t expected = seen;
        seen = cas(p, expected, expected + 1);
        if (seen == expected)
            return;
    }
}

/* Fetch-and-add with acquire: LDADDA, or an exclusive-pair loop without LSE. */
static uint32_t fetch_add_acquire(uint32_t *p, uint32_t n)
{
    uint32_t old, failed, sum;
    if (have_lse) {
        __asm__ volatile(".arch armv8.1-a\n"
                         "ldadda %w1, %w0, [%2]\n"
                         : "=&r"(old)
                         : "r"(n), "r"(p)
                         : "memory");
        return old;
    }
    __asm__ volatile("1: ldaxr %w0, [%3]\n"
                     "   add %w2, %w0, %w4\n"
                     "   stxr %w1, %w2, [%3]\n"
                     "   cbnz %w1, 1b\n"
                     : "=&r"(old), "=&r"(failed), "=&r"(sum)
                     : "r"(p), "r"(n)
                     : "memory");
    return old;
}

static void ticket_lock(void)
{
    uint32_t mine = fetch_add_acquire(&c.next_ticket, 1), now;
    /* Wait as Linux's spinlocks do: the exclusive load arms the monitor,
     * and the holder's releasing store wakes the WFE. */
    __asm__ volatile("   sevl\n"
                     "1: wfe\n"
                     "   ldaxr %w0, [%1]\n"
                     "   cmp %w0, %w2\n"
                     "   b.ne 1b\n"
                     : "=&r"(now)
                     : "r"(&c.now_serving), "r"(mine)
                     : "memory", "cc");
}

static void ticket_unlock(void)
{
    uint32_t next = c.now_serving + 1;
    __asm__ volatile("stlr %w0, [%1]\n" : : "r"(next), "r"(&c.now_serving) : "memory");
}

static void *worker(void *arg)
{
    long cpu = (long)arg;
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof(set), &set);
    }
    pthread_barrier_wait(&start);
    for (long i = 0; i < iterations; i++) {
        exclusive_inc(&c.exclusive);
        pair_inc(c.pair);
        if (have_lse)
            lse_inc(&c.lse);
        cas_inc(&c.cas);
        ticket_lock();
        /* A plain read-modify-write: exact only if the lock works. */
        *(volatile uint64_t *)&c.plain = *(volatile uint64_t *)&c.plain + 1;
        ticket_unlock();
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    have_lse = (getauxval(AT_HWCAP) & HWCAP_ATOMICS) != 0;
    if (!have_lse)
        printf("no LSE atomics on this CPU: exclusive-pair loops stand in for them\n");
    long threads = argc > 1 ? atol(argv[1]) : cpus;
    iterations = argc > 2 ? atol(argv[2]) : 20000;
    long rounds = argc > 3 ? atol(argv[3]) : 5;
    if (threads < 1 || threads > 64 || iterations < 1 || rounds < 1) {
        fprintf(stderr, "usage: smp-atomics [THREADS [ITERATIONS [ROUNDS]]]\n");
        return 2;
    }
    int bad = 0;
    for (long r = 0; r < rounds; r++) {
        pthread_t t[64];
        __builtin_memset(&c, 0, sizeof(c));
        pthread_barrier_init(&start, NULL, threads);
        for (long i = 0; i < threads; i++)
            pthread_create(&t[i], NULL, worker, (void *)(threads <= cpus ? i : -1L));
        for (long i = 0; i < threads; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&start);
        uint64_t want = (uint64_t)threads * iterations;
        int ok = c.exclusive == want && c.pair[0] == want && c.pair[1] == want &&
                 c.lse == (have_lse ? want : 0) && c.cas == want && c.plain == want && c.next_ticket == want &&
                 c.now_serving == want;
        printf("round %ld %s: want %llu exclusive %llu pair %llu/%llu lse %llu cas %llu "
               "locked %llu\n",
               r, ok ? "ok" : "WRONG", (unsigned long long)want,
               (unsigned long long)c.exclusive, (unsigned long long)c.pair[0],
               (unsigned long long)c.pair[1], (unsigned long long)c.lse,
               (unsigned long long)c.cas, (unsigned long long)c.plain);
        bad |= !ok;
    }
    printf("SMP-ATOMICS %s threads=%ld iterations=%ld rounds=%ld cpus=%ld\n", bad ? "FAIL" : "ok",
           threads, iterations, rounds, cpus);
    return bad;
}
