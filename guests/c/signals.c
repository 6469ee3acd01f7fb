/* signals: POSIX signal delivery as Linux on arm64 does it, for comparing
 * a64-run with qemu-aarch64. Each case prints deterministic lines only (no
 * addresses, no timings). The last case dies of SIGTERM on purpose, so the
 * exit status is compared too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

static volatile sig_atomic_t hits;
static volatile int last_sig, last_code, usr1_blocked_inside, nested;
static volatile double fp_in_handler;
static sigjmp_buf jump;
static void *volatile fault_addr, *expected_addr;

static void flush(void) { fflush(stdout); }

static void on_usr1(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    usr1_blocked_inside = sigismember(&now, SIGUSR1);
    last_sig = sig;
    last_code = si->si_code;
    /* Clobber FP/SIMD registers: the interrupted code must not notice. */
    volatile double x = 1.0;
    for (int i = 0; i < 10; i++) x = x * 3.25 + 0.5;
    fp_in_handler = x;
    hits++;
}

static void case_raise_keeps_state(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    double acc = 0.1;
    long ints = 7;
    for (int i = 0; i < 5; i++) {
        acc = acc * 1.5 + 0.25;
        ints = ints * 31 + i;
        raise(SIGUSR1);
    }
    printf("raise: hits=%d sig=%d code=%d blocked-inside=%d fp=%.6f acc=%.9f ints=%ld\n", hits,
           last_sig, last_code, usr1_blocked_inside, fp_in_handler, acc, ints);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("raise: blocked after handler=%d\n", sigismember(&now, SIGUSR1));
}

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    last_sig = sig;
    last_code = si->si_code;
    fault_addr = si->si_addr;
    siglongjmp(jump, 1);
}

static void case_segv(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    expected_addr = (void *)16;
    if (sigsetjmp(jump, 1) == 0) {
        *(volatile int *)expected_addr = 1;
        puts("segv: no fault?");
    }
    printf("segv unmapped: sig=%d code=%d addr-ok=%d\n", last_sig, last_code,
           fault_addr == expected_addr);
    char *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expected_addr = page + 100;
    if (sigsetjmp(jump, 1) == 0) {
        *(volatile char *)expected_addr = 1;
        puts("segv: no fault?");
    }
    printf("segv read-only: sig=%d code=%d addr-ok=%d\n", last_sig, last_code,
           fault_addr == expected_addr);
    /* The mask saved by sigsetjmp(…, 1) came back: SIGSEGV is not blocked. */
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("segv: blocked after longjmp=%d\n", sigismember(&now, SIGSEGV));
    munmap(page, 4096);
}

static void on_ill(int sig, siginfo_t *si, void *ucp) {
    ucontext_t *uc = ucp;
    last_sig = sig;
    last_code = si->si_code;
    fault_addr = si->si_addr;
    /* Skip the faulting instruction and leave a mark in x0 (through the frame). */
    expected_addr = (void *)uc->uc_mcontext.pc;
    uc->uc_mcontext.pc += 4;
    uc->uc_mcontext.regs[0] = 4242;
}

static void case_sigill_edits_context(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_ill;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGILL, &sa, NULL);
    register long x0 __asm__("x0") = 1;
    __asm__ volatile(".inst 0x00000000" : "+r"(x0)); /* UDF #0 */
    /* Linux says ILL_ILLOPC (1), qemu-user ILL_ILLOPN (2): both kernel-made. */
    printf("sigill: sig=%d from-kernel=%d addr-is-pc=%d x0=%ld\n", last_sig, last_code > 0,
           fault_addr == expected_addr, x0);
    sa.sa_handler = SIG_DFL;
    sa.sa_flags = 0;
    sigaction(SIGILL, &sa, NULL);
}

static void on_trap(int sig, siginfo_t *si, void *ucp) {
    ucontext_t *uc = ucp;
    last_sig = sig;
    last_code = si->si_code;
    uc->uc_mcontext.pc += 4;
}

static void case_brk(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_trap;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGTRAP, &sa, NULL);
    __asm__ volatile("brk #0x7");
    printf("brk: sig=%d code=%d\n", last_sig, last_code);
}

static char alt_stack[64 * 1024];
static volatile int on_alt;
static void on_usr2(int sig) {
    char here;
    (void)sig;
    on_alt = &here >= alt_stack && &here < alt_stack + sizeof alt_stack;
    stack_t now;
    sigaltstack(NULL, &now);
    on_alt |= (now.ss_flags & SS_ONSTACK) ? 2 : 0;
}

static void case_altstack(void) {
    stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack, .ss_flags = 0};
    printf("sigaltstack: set=%d\n", sigaltstack(&ss, NULL));
    struct sigaction sa = {0};
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
    printf("sigaltstack: handler on alt stack=%d flags-onstack=%d\n", on_alt & 1, on_alt >> 1);
    stack_t small = {.ss_sp = alt_stack, .ss_size = 100, .ss_flags = 0};
    int r = sigaltstack(&small, NULL);
    printf("sigaltstack: too small=%d errno=%s\n", r, strerrorname_np(errno));
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
    stack_t now;
    sigaltstack(NULL, &now);
    printf("sigaltstack: disabled=%d\n", (now.ss_flags & SS_DISABLE) != 0);
}

static volatile int outer_done, inner_seen_during_outer;
static void on_inner(int sig) {
    (void)sig;
    inner_seen_during_outer = !outer_done;
    nested++;
}
static void on_outer(int sig) {
    (void)sig;
    raise(SIGHUP); /* not blocked here: runs before this handler returns */
    outer_done = 1;
    nested++;
}

static void case_nested_and_mask(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_inner;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_outer;
    sigaction(SIGQUIT, &sa, NULL);
    raise(SIGQUIT);
    printf("nested: handlers=%d inner-first=%d\n", nested, inner_seen_during_outer);
    /* Blocked signals wait; unblocking delivers them. */
    nested = 0;
    outer_done = 0;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGHUP);
    sigprocmask(SIG_BLOCK, &s, NULL);
    raise(SIGHUP);
    sigset_t pend;
    sigpending(&pend);
    printf("mask: delivered while blocked=%d pending=%d\n", nested, sigismember(&pend, SIGHUP));
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    printf("mask: delivered after unblock=%d\n", nested);
}

static volatile int resets;
static void on_once(int sig) {
    (void)sig;
    resets++;
}

static void case_resethand(void) {
    struct sigaction sa = {0}, now;
    sa.sa_handler = on_once;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGWINCH, &sa, NULL);
    raise(SIGWINCH);
    raise(SIGWINCH); /* default action now: ignored */
    sigaction(SIGWINCH, NULL, &now);
    printf("resethand: handled=%d now-default=%d\n", resets, now.sa_handler == SIG_DFL);
}

static volatile int child_signals;
static volatile pid_t child_pid_seen;
static volatile int child_status_seen;
static void on_child(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    child_signals++;
    child_pid_seen = si->si_pid;
    child_status_seen = si->si_status;
}

static void case_sigchld_sigsuspend(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_child;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);
    flush();
    pid_t pid = fork();
    if (pid == 0) _exit(9);
    while (!child_signals) {
        int r = sigsuspend(&old);
        if (r != -1 || errno != EINTR) puts("sigsuspend: unexpected return");
    }
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    int status;
    waitpid(pid, &status, 0);
    printf("sigchld: signals=%d pid-ok=%d status=%d mask-restored=%d exit=%d\n", child_signals,
           child_pid_seen == pid, child_status_seen, sigismember(&now, SIGCHLD),
           WEXITSTATUS(status));
    sigprocmask(SIG_SETMASK, &old, NULL);
    sa.sa_handler = SIG_DFL;
    sa.sa_flags = 0;
    sigaction(SIGCHLD, &sa, NULL);
}

static volatile int alarms;
static void on_alarm(int sig) {
    (void)sig;
    alarms++;
}

/* A read on a pipe interrupted by a timer: SA_RESTART resumes it, without it
 * read fails with EINTR. The timer repeats every 50 ms, so one lands inside
 * the read however late the read starts; a child writes after 600 ms. */
static void read_through_alarm(int restart) {
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);
    int fds[2];
    pipe(fds);
    flush();
    pid_t pid = fork();
    if (pid == 0) {
        usleep(600 * 1000);
        write(fds[1], "late", 4);
        _exit(0);
    }
    alarms = 0;
    struct itimerval t = {.it_value = {.tv_usec = 50 * 1000}, .it_interval = {.tv_usec = 50 * 1000}};
    setitimer(ITIMER_REAL, &t, NULL);
    char buf[8] = {0};
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    int err = errno;
    struct itimerval off = {0};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("read %s SA_RESTART: n=%zd %s alarms>0=%d\n", restart ? "with" : "without", n,
           n < 0 ? strerrorname_np(err) : buf, alarms > 0);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    close(fds[1]);
}

static void case_sigtimedwait(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    sigprocmask(SIG_BLOCK, &s, NULL);
    union sigval v = {.sival_int = 77};
    sigqueue(getpid(), SIGUSR2, v);
    siginfo_t si;
    struct timespec t = {1, 0};
    int sig = sigtimedwait(&s, &si, &t);
    printf("sigtimedwait: sig=%d code=%d value=%d\n", sig, si.si_code, si.si_value.sival_int);
    t.tv_sec = 0;
    t.tv_nsec = 20 * 1000 * 1000;
    sig = sigtimedwait(&s, &si, &t);
    printf("sigtimedwait: empty=%d errno=%s\n", sig, strerrorname_np(errno));
    sigprocmask(SIG_UNBLOCK, &s, NULL);
}

static void case_kill_child_by_signal(void) {
    flush();
    pid_t pid = fork();
    if (pid == 0) {
        *(volatile int *)(uintptr_t)getppid() = 0; /* SIGSEGV is back to its default action */
        _exit(1);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child fault: signaled=%d\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    case_raise_keeps_state();
    case_segv();
    case_sigill_edits_context();
    case_brk();
    case_altstack();
    case_nested_and_mask();
    case_resethand();
    case_sigchld_sigsuspend();
    read_through_alarm(1);
    read_through_alarm(0);
    case_sigtimedwait();
    struct sigaction dfl = {0};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGSEGV, &dfl, NULL);
    case_kill_child_by_signal();
    puts("dying of SIGTERM");
    flush();
    raise(SIGTERM);
    puts("still alive?");
    return 3;
}
