/* CPU-bound benchmark for bench/cpu.sh: integer loops, hashing, sorting,
 * calls and recursion, floating point. Prints a checksum per part so the
 * runs under our CPU, qemu-aarch64 and natively can be checked against each other. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

/* A SHA-256-style compression loop (not the full standard padding). */
static uint32_t sha_like(const uint32_t *w0, int blocks) {
    static const uint32_t k[8] = {0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5};
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    for (int b = 0; b < blocks; b++) {
        uint32_t w[64];
        for (int i = 0; i < 16; i++) w[i] = w0[(b * 16 + i) & 1023];
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i & 7] + w[i];
            uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
            hh = g; g = f; f = e; e = d + t1; d = c; c = bb; bb = a; a = t1 + t2;
        }
        h[0] += a; h[1] += bb; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
    return h[0] ^ h[7];
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void merge_sort(uint32_t *a, uint32_t *tmp, size_t n) {
    if (n < 2) return;
    size_t m = n / 2;
    merge_sort(a, tmp, m);
    merge_sort(a + m, tmp, n - m);
    size_t i = 0, j = m, k = 0;
    while (i < m && j < n) tmp[k++] = a[i] <= a[j] ? a[i++] : a[j++];
    while (i < m) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

static unsigned fib(unsigned n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

static unsigned mandelbrot(int size, int iters) {
    unsigned inside = 0;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            double cr = 2.5 * x / size - 2.0, ci = 2.0 * y / size - 1.0, zr = 0, zi = 0;
            int i = 0;
            while (i < iters && zr * zr + zi * zi < 4.0) {
                double t = zr * zr - zi * zi + cr;
                zi = 2.0 * zr * zi + ci;
                zr = t;
                i++;
            }
            inside += i == iters;
        }
    return inside;
}

int main(int argc, char **argv) {
    int scale = argc > 1 ? atoi(argv[1]) : 1;
    enum { N = 200000 };
    static uint32_t data[N], tmp[N], words[1024];
    for (int i = 0; i < 1024; i++) words[i] = (uint32_t)next();

    uint64_t acc = 0;
    for (int r = 0; r < 30 * scale; r++)
        for (int i = 1; i < 100000; i++) acc += (uint64_t)i * i ^ (acc >> 3) ^ (uint64_t)(i % 7);
    printf("loops %016llx\n", (unsigned long long)acc);

    printf("sha %08x\n", sha_like(words, 3000 * scale));
    uint8_t *buf = malloc(1 << 20);
    for (int i = 0; i < (1 << 20); i++) buf[i] = (uint8_t)next();
    uint64_t h = 0;
    for (int r = 0; r < 4 * scale; r++) h = h * 31 + fnv1a(buf, 1 << 20) + r;
    printf("fnv %016llx\n", (unsigned long long)h);

    uint64_t sorted = 0;
    for (int r = 0; r < scale; r++) {
        for (int i = 0; i < N; i++) data[i] = (uint32_t)next();
        qsort(data, N, sizeof data[0], cmp_u32);
        for (int i = 0; i < N; i++) data[i] ^= (uint32_t)next();
        merge_sort(data, tmp, N);
        sorted += data[N / 2] + data[0];
    }
    printf("sort %016llx\n", (unsigned long long)sorted);

    printf("fib %u\n", fib(27 + (scale > 1)));
    printf("mandel %u\n", mandelbrot(160 * scale, 200));
    free(buf);
    return 0;
}
