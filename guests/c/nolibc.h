/* Minimal freestanding support for aarch64 Linux test programs that must not
 * depend on glibc (and so use only the integer instruction set). */
#ifndef NOLIBC_H
#define NOLIBC_H

static inline long sys6(long n, long a, long b, long c, long d, long e, long f) {
    register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c, x3 __asm__("x3") = d, x4 __asm__("x4") = e, x5 __asm__("x5") = f;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
    return x0;
}
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)

static unsigned long slen(const char *s) { unsigned long n = 0; while (s[n]) n++; return n; }
static void puts_(const char *s) { sys3(64, 1, s, slen(s)); }
static int streq(const char *a, const char *b) { while (*a && *a == *b) { a++; b++; } return *a == *b; }
static void putnum(long v) {
    char buf[24]; int i = 23; buf[i] = 0;
    int neg = v < 0; unsigned long u = neg ? -(unsigned long)v : (unsigned long)v;
    do { buf[--i] = '0' + u % 10; u /= 10; } while (u);
    if (neg) buf[--i] = '-';
    puts_(buf + i);
}
static void exit_(int code) { sys3(94, code, 0, 0); for (;;) {} }

int main(int argc, char **argv, char **envp);
void start_c(long *sp) { exit_(main((int)sp[0], (char **)(sp + 1), (char **)(sp + 2 + sp[0]))); }
__asm__(".globl _start\n_start: mov x0, sp\n b start_c\n");
#endif
