/* FP/SIMD conformance program: loops gcc -O3 auto-vectorises, libm functions,
 * conversions at the limits, rounding modes and exception flags, printf of
 * doubles. Run under our CPU and under qemu-aarch64; the outputs must match. */
#include <fenv.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 1027

static double da[N], db[N], dc[N];
static float fa[N], fb[N], fc[N];
static int32_t ia[N], ib[N], ic[N];
static int16_t sa[N], sb[N], sc[N];
static uint8_t ua[N], ub[N], uc[N];
static int64_t la[N], lb[N];

static uint64_t seed = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; return seed; }

static uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}
#define H(x) printf("%-12s %016" PRIx64 "\n", #x, hash_bytes(x, sizeof x))

static void fill(void) {
    for (int i = 0; i < N; i++) {
        da[i] = (double)(int64_t)rnd() / 9.2e15; db[i] = (double)(rnd() % 2001) / 7.0 - 140.0;
        fa[i] = (float)da[i]; fb[i] = (float)db[i];
        ia[i] = (int32_t)rnd(); ib[i] = (int32_t)(rnd() % 65536) - 32768;
        sa[i] = (int16_t)rnd(); sb[i] = (int16_t)rnd();
        ua[i] = (uint8_t)rnd(); ub[i] = (uint8_t)rnd();
        la[i] = (int64_t)rnd(); lb[i] = (int64_t)(rnd() >> 3);
    }
}

static void vector_loops(void) {
    for (int i = 0; i < N; i++) dc[i] = da[i] * db[i] + dc[i] * 0.5;
    H(dc);
    for (int i = 0; i < N; i++) fc[i] = fa[i] / (fb[i] + 1000.0f) - fmaxf(fa[i], fb[i]);
    H(fc);
    for (int i = 0; i < N; i++) fc[i] = fabsf(fa[i]) < 1.0f ? sqrtf(fabsf(fb[i])) : fminf(fa[i], -fb[i]);
    H(fc);
    for (int i = 0; i < N; i++) ic[i] = ia[i] * ib[i] + (ia[i] >> 3) - abs(ib[i]);
    H(ic);
    for (int i = 0; i < N; i++) ic[i] = ia[i] > ib[i] ? ia[i] - ib[i] : ib[i] ^ 0x5a5a;
    H(ic);
    for (int i = 0; i < N; i++) { int v = sa[i] + sb[i]; sc[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v; }
    H(sc);
    for (int i = 0; i < N; i++) uc[i] = (uint8_t)((ua[i] + ub[i] + 1) >> 1);
    H(uc);
    for (int i = 0; i < N; i++) uc[i] = ua[i] > ub[i] ? ua[i] : ub[i];
    H(uc);
    for (int i = 0; i < N; i++) dc[i] = (double)ia[i] * 0.25 + (double)la[i];
    H(dc);
    for (int i = 0; i < N; i++) ic[i] = (int32_t)(fa[i] * 1000.0f);
    H(ic);
    for (int i = 0; i < N; i++) fc[i] = (float)da[i] + (float)ib[i];
    H(fc);
    double dsum = 0; float fsum = 0; int64_t lsum = 0; int32_t imax = INT32_MIN; uint32_t usum = 0;
    for (int i = 0; i < N; i++) { dsum += da[i] * db[i]; fsum += fa[i]; lsum += la[i] >> 4; imax = ia[i] > imax ? ia[i] : imax; usum += ua[i]; }
    printf("reductions %.17g %.9g %" PRId64 " %d %u\n", dsum, fsum, lsum, imax, usum);
}

static void libm(void) {
    static const double xs[] = {0.0, -0.0, 1e-310, 0.5, 1.0, 2.5, -3.75, 10.0, 100.5, 1e10, -1e-5, 709.0, INFINITY, -INFINITY, NAN};
    for (unsigned k = 0; k < sizeof xs / sizeof xs[0]; k++) {
        double x = xs[k];
        printf("x=%a sin %a cos %a tan %a exp %a log %a log2 %a sqrt %a cbrt %a\n", x, sin(x), cos(x), tan(x), exp(x), log(fabs(x)), log2(fabs(x)), sqrt(x), cbrt(x));
        printf("  pow %a atan2 %a hypot %a erf %a tgamma %a fmod %a rem %a\n", pow(x, 1.5), atan2(x, 2.0), hypot(x, 3.0), erf(x), tgamma(x), fmod(x, 0.7), remainder(x, 0.7));
        printf("  floor %a ceil %a round %a trunc %a rint %a nearby %a fma %a lround %ld llrint %lld\n", floor(x), ceil(x), round(x), trunc(x), rint(x), nearbyint(x),
               fma(x, 3.0, -1.0), isfinite(x) && fabs(x) < 1e18 ? lround(x) : 0L, isfinite(x) && fabs(x) < 1e18 ? llrint(x) : 0LL);
        int e;
        double m = frexp(x, &e);
        printf("  frexp %a %d ldexp %a sinf %a expf %a\n", m, e, ldexp(x, 7), (double)sinf((float)x), (double)expf((float)x));
    }
}

static void conversions(void) {
    static const double ds[] = {0.5, -0.5, 1.5, 2.5, -2.5, 2147483647.5, -2147483648.9, 4294967296.0, 9.3e18, -9.3e18, 1.9e19, -1.0, NAN, INFINITY};
    for (unsigned k = 0; k < sizeof ds / sizeof ds[0]; k++) {
        volatile double d = ds[k];
        volatile float f = (float)d;
        printf("%a -> i32 %d u32 %u i64 %lld u64 %llu f %a back %a\n", d, (int32_t)d, (uint32_t)(d < 0 ? 0 : d),
               (long long)(d != d ? 0 : d > 9e18 ? 0 : d < -9e18 ? 0 : (int64_t)d), (unsigned long long)(d >= 0 && d < 1.8e19 ? (uint64_t)d : 0), (double)f, (double)(float)(int32_t)1234567891);
    }
    volatile int64_t big = INT64_MAX; volatile uint64_t ubig = UINT64_MAX;
    printf("i64->d %a u64->d %a i64->f %a u64->f %a\n", (double)big, (double)ubig, (double)(float)big, (double)(float)ubig);
}

static void rounding_and_flags(void) {
    static const int modes[] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};
    static const char *names[] = {"nearest", "upward", "downward", "zero"};
    for (int m = 0; m < 4; m++) {
        fesetround(modes[m]);
        volatile double a = 1.0, b = 3.0, c = -2.0;
        volatile float fa1 = 1.0f, fb1 = 3.0f;
        printf("%-8s %a %a %a %a %.20f rint %a\n", names[m], a / b, c / b, (double)(fa1 / fb1), sqrt(b), a / b, rint(2.5));
    }
    fesetround(FE_TONEAREST);
    static const struct { const char *what; double x, y; int op; } cases[] = {
        {"1/0", 1, 0, 0}, {"0/0", 0, 0, 0}, {"1/3", 1, 3, 0}, {"max*2", DBL_MAX, 2, 1}, {"min*min", DBL_MIN, DBL_MIN, 1}, {"exact", 2, 4, 1},
    };
    for (unsigned k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        feclearexcept(FE_ALL_EXCEPT);
        volatile double x = cases[k].x, y = cases[k].y, r = cases[k].op ? x * y : x / y;
        int e = fetestexcept(FE_ALL_EXCEPT);
        printf("%-8s %a flags%s%s%s%s%s\n", cases[k].what, r, e & FE_INVALID ? " invalid" : "", e & FE_DIVBYZERO ? " divbyzero" : "", e & FE_OVERFLOW ? " overflow" : "",
               e & FE_UNDERFLOW ? " underflow" : "", e & FE_INEXACT ? " inexact" : "");
    }
}

static void printing(void) {
    static const double vs[] = {0.1, 1.0 / 3, 2.0 / 3, 1e-300, 6.02214076e23, -1234.5678, 5e-324, 1.7976931348623157e308, 0.0, -0.0};
    for (unsigned k = 0; k < sizeof vs / sizeof vs[0]; k++)
        printf("%f|%.3f|%e|%.10e|%g|%.17g|%a|%10.4f|%-12.3e|\n", vs[k], vs[k], vs[k], vs[k], vs[k], vs[k], vs[k], vs[k], vs[k]);
    printf("%f %f %f\n", INFINITY, -INFINITY, NAN);
    char buf[64];
    for (unsigned k = 0; k < sizeof vs / sizeof vs[0]; k++) {
        snprintf(buf, sizeof buf, "%.17g", vs[k]);
        printf("strtod round trip %s %d\n", buf, strtod(buf, NULL) == vs[k]);
    }
}

int main(void) {
    fill();
    vector_loops();
    libm();
    conversions();
    rounding_and_flags();
    printing();
    return 0;
}
