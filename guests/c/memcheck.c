/* memcheck: keeps rewriting a buffer with a known pattern and checking it,
 * so that a page a migration failed to carry shows up as a mismatch.
 *
 *   memcheck MIB [MIB_PER_SECOND]
 *
 * Every page of MIB MiB holds, in each 64-bit word, its page number, its
 * generation and the word's index. A pass checks every page against what
 * was last written to it and then writes the next generation; at most
 * MIB_PER_SECOND MiB are rewritten per second (0 or absent: no limit).
 * Prints "MEMCHECK ready", then "MEMCHECK pass N" after each pass; on a
 * mismatch prints "MEMCHECK MISMATCH ..." and exits 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096
#define WORDS (PAGE / 8)

static uint64_t word(uint64_t page, uint32_t gen, uint64_t i) {
    return (page << 32) ^ ((uint64_t)gen << 12) ^ i ^ 0x5a5a000000000000ull;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: memcheck MIB [MIB_PER_SECOND]\n");
        return 2;
    }
    uint64_t pages = strtoull(argv[1], 0, 0) * (1 << 20) / PAGE;
    double rate = argc > 2 ? strtod(argv[2], 0) : 0;
    uint64_t *mem = mmap(0, pages * PAGE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    uint32_t *gen = calloc(pages, sizeof *gen);
    if (mem == MAP_FAILED || !gen) {
        perror("memcheck");
        return 2;
    }
    for (uint64_t p = 0; p < pages; p++)
        for (uint64_t i = 0; i < WORDS; i++)
            mem[p * WORDS + i] = word(p, 0, i);
    printf("MEMCHECK ready pages=%llu\n", (unsigned long long)pages);
    fflush(stdout);
    double start = now();
    uint64_t written = 0;
    for (unsigned long pass = 1;; pass++) {
        for (uint64_t p = 0; p < pages; p++) {
            uint64_t *w = &mem[p * WORDS];
            for (uint64_t i = 0; i < WORDS; i++) {
                uint64_t want = word(p, gen[p], i);
                if (w[i] != want) {
                    printf("MEMCHECK MISMATCH page=%llu word=%llu got=%016llx want=%016llx\n",
                           (unsigned long long)p, (unsigned long long)i,
                           (unsigned long long)w[i], (unsigned long long)want);
                    fflush(stdout);
                    return 1;
                }
            }
            gen[p]++;
            for (uint64_t i = 0; i < WORDS; i++)
                w[i] = word(p, gen[p], i);
            written += PAGE;
            if (rate > 0) {
                double due = written / (rate * (1 << 20));
                double late = due - (now() - start);
                if (late > 0.001) {
                    struct timespec t = {(time_t)late, (long)((late - (time_t)late) * 1e9)};
                    nanosleep(&t, 0);
                }
            }
        }
        printf("MEMCHECK pass %lu\n", pass);
        fflush(stdout);
    }
}
