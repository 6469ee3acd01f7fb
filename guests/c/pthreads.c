/* Threads under a64-run and qemu-aarch64: mutexes (plain, robust, priority
 * inheritance), condition variables, barriers, thread-local storage,
 * read-write locks, atomics, cancellation, signals to one thread, fork
 * from a threaded process and the main thread leaving first. Prints only
 * what is deterministic; the test compares the output with qemu-aarch64's.
 * "pthreads beyond-qemu" runs what qemu-aarch64 7.2 cannot (see below).
 *
 * Build: aarch64-linux-gnu-gcc -static -O2 -pthread pthreads.c */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4

static void check(int ok, const char *what)
{
    if (!ok) {
        printf("FAILED: %s\n", what);
        exit(1);
    }
}

static pid_t tid(void) { return (pid_t)syscall(SYS_gettid); }

/* ---- a mutex around a plain counter ---- */
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *count_up(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&count_lock);
        counter++;
        pthread_mutex_unlock(&count_lock);
    }
    return (void *)(n * 2);
}

static void test_mutex(void)
{
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        check(pthread_create(&t[i], NULL, count_up, (void *)(20000 + i)) == 0, "create");
    long returned = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        returned += (long)r;
    }
    printf("mutex: counter %ld, join values %ld\n", counter, returned);
}

/* ---- a bounded queue with condition variables ---- */
#define QUEUE 8
#define ITEMS 20000
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t q_not_full = PTHREAD_COND_INITIALIZER;
static int queue[QUEUE], q_head, q_len;

static void *produce(void *arg)
{
    int base = (int)(long)arg;
    for (int i = 1; i <= ITEMS; i++) {
        pthread_mutex_lock(&q_lock);
        while (q_len == QUEUE)
            pthread_cond_wait(&q_not_full, &q_lock);
        queue[(q_head + q_len++) % QUEUE] = base + i;
        pthread_cond_signal(&q_not_empty);
        pthread_mutex_unlock(&q_lock);
    }
    return NULL;
}

static void *consume(void *arg)
{
    long sum = 0, n = (long)arg;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&q_lock);
        while (q_len == 0)
            pthread_cond_wait(&q_not_empty, &q_lock);
        sum += queue[q_head];
        q_head = (q_head + 1) % QUEUE;
        q_len--;
        pthread_cond_signal(&q_not_full);
        pthread_mutex_unlock(&q_lock);
    }
    return (void *)sum;
}

static void test_condvar(void)
{
    pthread_t p1, p2, c1, c2;
    pthread_create(&p1, NULL, produce, (void *)0L);
    pthread_create(&p2, NULL, produce, (void *)1000000L);
    pthread_create(&c1, NULL, consume, (void *)(long)ITEMS);
    pthread_create(&c2, NULL, consume, (void *)(long)ITEMS);
    void *s1, *s2;
    pthread_join(p1, NULL);
    pthread_join(p2, NULL);
    pthread_join(c1, &s1);
    pthread_join(c2, &s2);
    printf("condvar: consumed sum %ld\n", (long)s1 + (long)s2);

    /* A timed wait nobody signals times out. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 20 * 1000 * 1000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&q_lock);
    int r = pthread_cond_timedwait(&q_not_empty, &q_lock, &until);
    pthread_mutex_unlock(&q_lock);
    printf("condvar: timed wait %s\n", r == ETIMEDOUT ? "timed out" : "did not time out");
}

/* ---- barriers: each phase sees every thread's write of the phase before ---- */
#define PHASES 200
static pthread_barrier_t barrier;
static int slots[THREADS];

static void *phases(void *arg)
{
    long me = (long)arg, bad = 0;
    for (int p = 1; p <= PHASES; p++) {
        slots[me] = p;
        pthread_barrier_wait(&barrier);
        for (int i = 0; i < THREADS; i++)
            bad += slots[i] != p;
        pthread_barrier_wait(&barrier);
    }
    return (void *)bad;
}

static void test_barrier(void)
{
    pthread_t t[THREADS];
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, phases, (void *)i);
    long bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    pthread_barrier_destroy(&barrier);
    printf("barrier: %d phases, %ld stale reads\n", PHASES, bad);
}

/* ---- thread-local storage ---- */
static __thread long tls_value = 7;
static __thread char tls_name[16] = "initial";

static void *use_tls(void *arg)
{
    long me = (long)arg;
    long start = tls_value; /* every thread starts from the initial image */
    snprintf(tls_name, sizeof tls_name, "thread-%ld", me);
    for (int i = 0; i < 1000; i++)
        tls_value += me;
    char *out = malloc(64);
    snprintf(out, 64, "%s started at %ld ended at %ld", tls_name, start, tls_value);
    return out;
}

static void test_tls(void)
{
    pthread_t t[THREADS];
    tls_value = 1000;
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, use_tls, (void *)(i + 1));
    for (int i = 0; i < THREADS; i++) {
        char *s;
        pthread_join(t[i], (void **)&s);
        printf("tls: %s\n", s);
        free(s);
    }
    printf("tls: main still has %ld and \"%s\"\n", tls_value, tls_name);
}

/* ---- read-write lock ---- */
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static long table[64];

static void *rw_worker(void *arg)
{
    long me = (long)arg, torn = 0;
    for (int i = 0; i < 5000; i++) {
        if (i % 10 == (int)me) {
            pthread_rwlock_wrlock(&rw);
            for (int j = 0; j < 64; j++)
                table[j]++;
            pthread_rwlock_unlock(&rw);
        } else {
            pthread_rwlock_rdlock(&rw);
            for (int j = 1; j < 64; j++)
                torn += table[j] != table[0];
            pthread_rwlock_unlock(&rw);
        }
    }
    return (void *)torn;
}

static void test_rwlock(void)
{
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, rw_worker, (void *)i);
    long torn = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        torn += (long)r;
    }
    printf("rwlock: table[0] %ld, torn reads %ld\n", table[0], torn);
}

/* ---- atomics and release/acquire message passing ---- */
static atomic_long shared_count;
static atomic_int flag;
static long payload;

static void *atomic_adder(void *arg)
{
    for (int i = 0; i < 50000; i++)
        atomic_fetch_add_explicit(&shared_count, 1, memory_order_relaxed);
    long expected = 0;
    while (!atomic_compare_exchange_weak(&shared_count, &expected, expected + 3))
        ;
    (void)arg;
    return NULL;
}

static void *sender(void *arg)
{
    for (long i = 1; i <= 20000; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 0)
            ;
        payload = i * 3;
        atomic_store_explicit(&flag, 1, memory_order_release);
    }
    (void)arg;
    return NULL;
}

static void *receiver(void *arg)
{
    long bad = 0;
    for (long i = 1; i <= 20000; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 1)
            ;
        bad += payload != i * 3;
        atomic_store_explicit(&flag, 0, memory_order_release);
    }
    (void)arg;
    return (void *)bad;
}

static void test_atomics(void)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, atomic_adder, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("atomics: count %ld\n", atomic_load(&shared_count));
    pthread_t s, r;
    void *bad;
    pthread_create(&s, NULL, sender, NULL);
    pthread_create(&r, NULL, receiver, NULL);
    pthread_join(s, NULL);
    pthread_join(r, &bad);
    printf("atomics: message passing, %ld stale payloads\n", (long)bad);
}

/* ---- robust and priority-inheritance mutexes ---- */
/* (qemu-aarch64 7.2 has no set_robust_list, so its robust mutexes never
 * learn of an owner's death: this case runs only with "beyond-qemu".) */
static pthread_mutex_t robust, pi;

static void *die_holding(void *arg)
{
    pthread_mutex_lock(&robust);
    (void)arg;
    return NULL; /* ends without unlocking */
}

static void *pi_worker(void *arg)
{
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&pi);
        counter++;
        pthread_mutex_unlock(&pi);
    }
    (void)arg;
    return NULL;
}

static void test_robust(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &a);
    pthread_t t;
    pthread_create(&t, NULL, die_holding, NULL);
    pthread_join(t, NULL);
    int r = pthread_mutex_lock(&robust);
    printf("robust: lock after the owner died: %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : strerror(r));
    if (r == EOWNERDEAD)
        pthread_mutex_consistent(&robust);
    pthread_mutex_unlock(&robust);
    printf("robust: lock again: %d\n", pthread_mutex_lock(&robust));
    pthread_mutex_unlock(&robust);
}

static void test_pi(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    pthread_mutex_init(&pi, &a);
    counter = 0;
    pthread_t w[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&w[i], NULL, pi_worker, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(w[i], NULL);
    printf("pi mutex: counter %ld\n", counter);
}

/* ---- a signal sent to one thread runs its handler there ---- */
static volatile pid_t handled_in;
static atomic_int target_ready;

static void on_usr1(int sig)
{
    (void)sig;
    handled_in = tid();
}

static void *wait_for_signal(void *arg)
{
    *(pid_t *)arg = tid();
    atomic_store(&target_ready, 1);
    while (handled_in == 0)
        usleep(1000);
    return NULL;
}

static void test_thread_signal(void)
{
    signal(SIGUSR1, on_usr1);
    pid_t target_tid = 0;
    pthread_t t;
    pthread_create(&t, NULL, wait_for_signal, &target_tid);
    while (!atomic_load(&target_ready))
        usleep(100);
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    printf("signal: handler ran in the target thread: %s; thread id differs from pid: %s\n",
           handled_in == target_tid ? "yes" : "no", target_tid != getpid() ? "yes" : "no");
}

/* ---- a signal sent just as its thread enters a blocking call is not held up ---- */
#define RACE_SIGNALS 4000
static int race_pipe[2];
static atomic_int race_handled, race_stop;

static void on_usr2(int sig)
{
    (void)sig;
    atomic_fetch_add(&race_handled, 1);
}

/* A readv of 1,024 one-byte pieces: the way into the kernel is long
 * enough that many signals land on it. */
static char race_bytes[1024];
static struct iovec race_iov[1024];

static void *race_reader(void *arg)
{
    for (int i = 0; i < 1024; i++) {
        race_iov[i].iov_base = &race_bytes[i];
        race_iov[i].iov_len = 1;
    }
    while (!atomic_load(&race_stop))
        if (readv(race_pipe[0], race_iov, 1024) < 0 && errno != EINTR)
            break;
    return arg;
}

static void test_signal_race(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2; /* no SA_RESTART: the read ends with EINTR */
    sigaction(SIGUSR2, &sa, NULL);
    check(pipe(race_pipe) == 0, "pipe");
    pthread_t t;
    pthread_create(&t, NULL, race_reader, NULL);
    int late = 0;
    unsigned seed = 1;
    for (int i = 0; i < RACE_SIGNALS; i++) {
        int before = atomic_load(&race_handled);
        /* A varying pause, so the signals land all over the reader's way
         * from its handler back into read. */
        seed = seed * 1103515245 + 12345;
        for (volatile unsigned spin = (seed >> 16) % 300; spin > 0; spin--)
            ;
        pthread_kill(t, SIGUSR2);
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        while (atomic_load(&race_handled) == before) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((now.tv_sec - start.tv_sec) * 1000000000L + now.tv_nsec - start.tv_nsec > 1000000000L) {
                /* Held up (a second) behind the blocking read: free the reader. */
                late++;
                check(write(race_pipe[1], "x", 1) == 1, "write");
                while (atomic_load(&race_handled) == before)
                    usleep(1000);
                break;
            }
        }
    }
    atomic_store(&race_stop, 1);
    check(write(race_pipe[1], "x", 1) == 1, "write");
    pthread_join(t, NULL);
    printf("signal race: %d of %d signals handled at once, %d held up by a blocking read\n",
           RACE_SIGNALS - late, RACE_SIGNALS, late);
}

/* ---- calls that never block are never interrupted ---- */
static atomic_int quick_done;

static void *quick_writer(void *arg)
{
    int fd = open("/dev/null", O_WRONLY);
    long interrupted = 0;
    int word = 0;
    for (int i = 0; i < 100000; i++) {
        if (write(fd, "x", 1) < 0 && errno == EINTR)
            interrupted++;
        if (syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) < 0 && errno == EINTR)
            interrupted++;
    }
    close(fd);
    atomic_store(&quick_done, 1);
    return (void *)interrupted;
}

static void test_quick_calls_under_signals(void)
{
    /* SIGUSR2's handler (no SA_RESTART) is still on_usr2. */
    pthread_t t;
    pthread_create(&t, NULL, quick_writer, NULL);
    /* Signals without pause: one in many thousands lands just before a call. */
    int sent = 0;
    while (!atomic_load(&quick_done)) {
        pthread_kill(t, SIGUSR2);
        sent++;
        for (volatile int spin = 0; spin < 200; spin++)
            ;
    }
    void *r;
    pthread_join(t, &r);
    printf("quick calls: writes to /dev/null and futex wakes under signals, %ld interrupted%s\n",
           (long)r, sent > 10000 ? "" : " (too few signals sent)");
}

/* ---- cancellation of a thread blocked in a cancellation point ---- */
static atomic_int cleanup_ran;

static void note_cleanup(void *arg)
{
    (void)arg;
    atomic_store(&cleanup_ran, 1);
}

static void *sleep_forever(void *arg)
{
    pthread_cleanup_push(note_cleanup, NULL);
    atomic_store((atomic_int *)arg, 1);
    for (;;)
        sleep(10);
    pthread_cleanup_pop(0);
    return NULL;
}

static void test_cancel(void)
{
    atomic_int started = 0;
    pthread_t t;
    pthread_create(&t, NULL, sleep_forever, &started);
    while (!atomic_load(&started))
        usleep(100);
    pthread_cancel(t);
    void *r;
    pthread_join(t, &r);
    printf("cancel: joined %s, cleanup handler ran: %s\n",
           r == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "something else",
           atomic_load(&cleanup_ran) ? "yes" : "no");
}

/* ---- many short threads (stacks reused once their ids are cleared) ---- */
static void *nothing(void *arg) { return arg; }

static void test_many(void)
{
    long sum = 0;
    for (long round = 0; round < 50; round++) {
        pthread_t t[8];
        for (long i = 0; i < 8; i++)
            pthread_create(&t[i], NULL, nothing, (void *)(round * 8 + i));
        for (int i = 0; i < 8; i++) {
            void *r;
            pthread_join(t[i], &r);
            sum += (long)r;
        }
    }
    printf("many: 400 threads joined, sum %ld\n", sum);
}

/* ---- malloc in every thread (arenas are mapped and protected by threads) ---- */
static void *churn(void *arg)
{
    unsigned seed = (unsigned)(long)arg;
    void *keep[256] = {0};
    long total = 0;
    for (int i = 0; i < 20000; i++) {
        seed = seed * 1103515245 + 12345;
        int slot = (seed >> 8) & 255;
        free(keep[slot]);
        size_t n = 16 + ((seed >> 16) % 70000);
        keep[slot] = malloc(n);
        memset(keep[slot], (int)slot, n);
        total += ((unsigned char *)keep[slot])[n - 1];
    }
    for (int i = 0; i < 256; i++)
        free(keep[i]);
    return (void *)total;
}

static void test_malloc(void)
{
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, churn, (void *)(i + 1));
    long total = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (long)r;
    }
    printf("malloc: checksum %ld\n", total);
}

/* ---- fork from a process with threads running ---- */
static atomic_int spin_stop;

static void *spin(void *arg)
{
    while (!atomic_load(&spin_stop))
        ;
    return arg;
}

/* With threads_in_child, the child starts a thread of its own (which
 * qemu-aarch64 7.2 cannot: it fails an assertion). */
static void test_fork(int threads_in_child)
{
    pthread_t t;
    pthread_create(&t, NULL, spin, NULL);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        /* Only the forking thread goes on in the child. */
        if (threads_in_child) {
            pthread_t c;
            pthread_create(&c, NULL, nothing, (void *)42L);
            void *r;
            pthread_join(c, &r);
            printf("fork: child's thread returned %ld\n", (long)r);
        } else {
            printf("fork: child runs\n");
        }
        fflush(stdout);
        _exit(3);
    }
    int status;
    waitpid(child, &status, 0);
    atomic_store(&spin_stop, 1);
    pthread_join(t, NULL);
    printf("fork: child exited with %d\n", WEXITSTATUS(status));
}

/* ---- futex and clone calls as a program makes them directly ---- */
static long futex(void *word, int op, int val, const struct timespec *t, void *word2, int val3)
{
    long r = syscall(SYS_futex, word, op, val, t, word2, val3);
    return r < 0 ? -errno : r;
}

static const char *errname(long r)
{
    switch (r) {
    case -EAGAIN: return "EAGAIN";
    case -ETIMEDOUT: return "ETIMEDOUT";
    case -EINVAL: return "EINVAL";
    case -EFAULT: return "EFAULT";
    case -ENOSYS: return "ENOSYS";
    default: return r < 0 ? "another error" : "no error";
    }
}

static void test_raw_calls(void)
{
    static int words[4] = {5, 0, 0, 0};
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    printf("futex: wait on a changed value: %s\n", errname(futex(&words[0], FUTEX_WAIT_PRIVATE, 4, NULL, NULL, 0)));
    printf("futex: wait that times out: %s\n", errname(futex(&words[0], FUTEX_WAIT_PRIVATE, 5, &ten_ms, NULL, 0)));
    printf("futex: bitset wait with an empty mask: %s\n",
           errname(futex(&words[0], FUTEX_WAIT_BITSET_PRIVATE, 5, NULL, NULL, 0)));
    printf("futex: misaligned word: %s\n",
           errname(futex((char *)&words[0] + 1, FUTEX_WAIT_PRIVATE, 5, &ten_ms, NULL, 0)));
    printf("futex: unmapped word: %s\n", errname(futex((void *)8, FUTEX_WAIT_PRIVATE, 5, &ten_ms, NULL, 0)));
    printf("futex: wake with nobody waiting: %ld\n", futex(&words[0], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
    printf("futex: compare-requeue on a changed value: %s\n",
           errname(futex(&words[0], FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1L, &words[1], 4)));
    printf("futex: unknown operation: %s\n", errname(futex(&words[0], 99, 0, NULL, NULL, 0)));
    long r = syscall(SYS_clone, CLONE_THREAD, NULL, NULL, NULL, NULL);
    printf("clone: a thread without CLONE_SIGHAND: %s\n", errname(r < 0 ? -errno : r));
}

/* ---- a thread runs code another thread rewrote (a JIT's pattern) ---- */
static atomic_int jit_done;

static void *run_generated(void *arg)
{
    int (*fn)(void) = (int (*)(void))arg;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int seen = fn();
    while (seen != 2) {
        seen = fn();
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 10)
            break;
    }
    atomic_store(&jit_done, 1);
    return (void *)(long)seen;
}

static void test_cross_modified_code(void)
{
    uint32_t *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(code != MAP_FAILED, "mmap rwx");
    code[0] = 0x52800020; /* mov w0, #1 */
    code[1] = 0xd65f03c0; /* ret */
    __builtin___clear_cache((char *)code, (char *)(code + 2));
    pthread_t t;
    pthread_create(&t, NULL, run_generated, code);
    usleep(20 * 1000);
    code[0] = 0x52800040; /* mov w0, #2 */
    __builtin___clear_cache((char *)code, (char *)(code + 2));
    void *r;
    pthread_join(t, &r);
    printf("jit: the running thread returned %ld after the rewrite\n", (long)r);
    munmap(code, 4096);
}

/* ---- execve from a thread ends every other thread ---- */
static void exec_child(void)
{
    int threads = 0;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0)
            threads = atoi(line + 8);
    if (f)
        fclose(f);
    const char *mark = getenv("PTHREADS_MARK");
    printf("exec: the new program runs with %d thread(s), PTHREADS_MARK=%s, PATH %s\n", threads,
           mark ? mark : "(unset)", getenv("PATH") ? "set" : "unset");
}

static void *exec_from_thread(void *arg)
{
    /* The new program gets exactly this environment. */
    char *args[] = {"pthreads", "exec-child", NULL};
    char *env[] = {"PTHREADS_MARK=42", NULL};
    execve("/proc/self/exe", args, env);
    printf("exec: failed: %s\n", strerror(errno));
    (void)arg;
    exit(1);
}

/* ---- the main thread leaves first; the last thread ends the process ---- */
static void *outlive_main(void *arg)
{
    usleep(50 * 1000);
    printf("last thread: main has gone, %s\n", (char *)arg);
    fflush(stdout);
    return NULL;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "exec-child") == 0) {
        exec_child();
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "beyond-qemu") == 0) {
        test_robust();
        test_fork(1);
        /* Another thread keeps running while one calls execve. */
        pthread_t spinner, execer;
        pthread_create(&spinner, NULL, spin, NULL);
        pthread_create(&execer, NULL, exec_from_thread, NULL);
        pthread_join(execer, NULL);
        return 1;
    }
    test_mutex();
    test_condvar();
    test_barrier();
    test_tls();
    test_rwlock();
    test_atomics();
    test_pi();
    test_thread_signal();
    test_signal_race();
    test_quick_calls_under_signals();
    test_cancel();
    test_many();
    test_malloc();
    test_fork(0);
    test_raw_calls();
    test_cross_modified_code();
    pthread_t t;
    pthread_create(&t, NULL, outlive_main, "goodbye");
    pthread_exit(NULL);
}
