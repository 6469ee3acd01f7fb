/* vsock-tool: the guest side of Pocketvisor's vsock tests and benchmark.
 *   vsock-tool echo PORT             accept one stream on PORT, echo it back
 *   vsock-tool ping CID PORT BYTES   send BYTES to CID:PORT, check the echo
 *   vsock-tool sink PORT             accept one stream, count it (MB/s)
 *   vsock-tool source CID PORT BYTES send BYTES to CID:PORT (MB/s)
 *   vsock-tool rtt CID PORT COUNT    COUNT 1-byte round trips with an echo
 *                                    at CID:PORT (p50/p99 latency in us)
 * and the host side of a VMM's vsock device (its unix socket PATH), for a
 * host that is itself an emulated arm64 machine (the KVM tests):
 *   vsock-tool host-echo PATH        accept one stream on PATH (the VMM's
 *                                    PATH_PORT for guest connections), echo it
 *   vsock-tool host-ping PATH PORT BYTES
 *                                    CONNECT to guest PORT through PATH
 *                                    (retrying while the guest is not yet
 *                                    listening), send BYTES, check the echo
 * Data is a fixed pattern so either end can check it (sink and source, made
 * for throughput, only check and make the first MiB). Prints one result line.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static unsigned char pattern(unsigned long i) { return (unsigned char)(i * 131 + (i >> 9)); }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) {
    printf("VSOCK-FAIL %s: %s\n", what, strerror(errno));
    exit(1);
}

static int accept_one(unsigned port) {
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(s, 1) < 0) die("listen");
    printf("VSOCK-LISTENING %u\n", port);
    fflush(stdout);
    int c = accept(s, NULL, NULL);
    if (c < 0) die("accept");
    close(s);
    return c;
}

static int connect_to(unsigned cid, unsigned port) {
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    return s;
}

static char buf[1 << 16];

static int echo_fd(int c) {
    unsigned long total = 0;
    for (;;) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n < 0) die("read");
        if (n == 0) break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(c, buf + off, n - off);
            if (w < 0) die("write");
            off += w;
        }
        total += n;
    }
    close(c);
    printf("VSOCK-ECHOED %lu\n", total);
    return 0;
}

static int echo(unsigned port) { return echo_fd(accept_one(port)); }

/* Sends BYTES on S while reading the echo (both at once, or the buffers fill). */
static int ping_fd(int s, unsigned long bytes) {
    unsigned long sent = 0, got = 0, bad = 0;
    double t0 = now();
    while (got < bytes) {
        struct pollfd p = {.fd = s, .events = POLLIN | (sent < bytes ? POLLOUT : 0)};
        if (poll(&p, 1, 30000) <= 0) die("poll (stalled)");
        if (p.revents & POLLOUT && sent < bytes) {
            unsigned long n = bytes - sent < sizeof buf ? bytes - sent : sizeof buf;
            for (unsigned long i = 0; i < n; i++) buf[i] = pattern(sent + i);
            ssize_t w = write(s, buf, n);
            if (w < 0) die("write");
            sent += w;
            if (sent == bytes) shutdown(s, SHUT_WR);
        }
        if (p.revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(s, buf, sizeof buf);
            if (n < 0) die("read");
            if (n == 0) break;
            for (ssize_t i = 0; i < n; i++) bad += (unsigned char)buf[i] != pattern(got + i);
            got += n;
        }
    }
    double ms = (now() - t0) * 1e3;
    close(s);
    printf("VSOCK-PING %s %lu/%lu bytes back, %lu wrong, %.0f ms\n",
           got == bytes && bad == 0 ? "ok" : "FAIL", got, bytes, bad, ms);
    return got == bytes && bad == 0 ? 0 : 1;
}

static int ping(unsigned cid, unsigned port, unsigned long bytes) {
    return ping_fd(connect_to(cid, port), bytes);
}

static int host_echo(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    unlink(path);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(s, 1) < 0) die("listen");
    printf("VSOCK-LISTENING %s\n", path);
    fflush(stdout);
    int c = accept(s, NULL, NULL);
    if (c < 0) die("accept");
    close(s);
    return echo_fd(c);
}

/* Connects through the VMM's socket PATH to guest PORT: "CONNECT PORT\n",
 * answered "OK <n>\n". Retries for a minute while the guest is not listening. */
static int host_ping(const char *path, unsigned port, unsigned long bytes) {
    for (int attempt = 0; attempt < 60; attempt++, sleep(1)) {
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0) die("socket");
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        strncpy(a.sun_path, path, sizeof a.sun_path - 1);
        if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
            close(s);
            continue;
        }
        dprintf(s, "CONNECT %u\n", port);
        char line[64];
        size_t n = 0;
        while (n < sizeof line - 1 && read(s, line + n, 1) == 1 && line[n] != '\n') n++;
        line[n] = 0;
        if (strncmp(line, "OK ", 3) == 0) return ping_fd(s, bytes);
        close(s);
    }
    errno = ETIMEDOUT;
    die("host-ping (no guest listener)");
    return 1;
}

static int sink(unsigned port) {
    int c = accept_one(port);
    unsigned long total = 0, bad = 0;
    double t0 = 0;
    for (;;) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n < 0) die("read");
        if (n == 0) break;
        if (total == 0) t0 = now();
        /* Only the first MiB is the pattern (a read may run past it). */
        for (ssize_t i = 0; i < n && total + i < (1 << 20); i++)
            bad += (unsigned char)buf[i] != pattern(total + i);
        total += n;
    }
    double s = now() - t0;
    close(c);
    printf("VSOCK-SINK %lu bytes %lu wrong %.1f MB/s\n", total, bad, total / s / 1e6);
    return bad != 0;
}

static int source(unsigned cid, unsigned port, unsigned long bytes) {
    int s = connect_to(cid, port);
    double t0 = now();
    for (unsigned long sent = 0; sent < bytes;) {
        unsigned long n = bytes - sent < sizeof buf ? bytes - sent : sizeof buf;
        if (sent < (1 << 20))
            for (unsigned long i = 0; i < n; i++) buf[i] = pattern(sent + i);
        for (unsigned long off = 0; off < n;) {
            ssize_t w = write(s, buf + off, n - off);
            if (w < 0) die("write");
            off += w;
        }
        sent += n;
    }
    shutdown(s, SHUT_WR);
    /* Wait for the host to close: then every byte has arrived. */
    while (read(s, buf, sizeof buf) > 0) {}
    double secs = now() - t0;
    close(s);
    printf("VSOCK-SOURCE %lu bytes %.1f MB/s\n", bytes, bytes / secs / 1e6);
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One byte out, the same byte back, COUNT times; the latency of each. */
static int rtt(unsigned cid, unsigned port, unsigned long count) {
    if (count == 0) count = 1;
    double *us = malloc(count * sizeof *us);
    if (!us) die("malloc");
    int s = connect_to(cid, port);
    unsigned long bad = 0;
    for (unsigned long i = 0; i < count; i++) {
        unsigned char out = pattern(i), in;
        double t0 = now();
        if (write(s, &out, 1) != 1) die("write");
        ssize_t n;
        while ((n = read(s, &in, 1)) < 0 && errno == EINTR) {}
        if (n < 0) die("read");
        if (n == 0) {
            errno = ECONNRESET;
            die("read (closed)");
        }
        us[i] = (now() - t0) * 1e6;
        bad += in != out;
    }
    close(s);
    qsort(us, count, sizeof *us, cmp_double);
    printf("VSOCK-RTT p50 %.0f us p99 %.0f us (%lu round trips, %lu wrong, max %.0f us)\n",
           us[(count - 1) / 2], us[(count * 99 + 99) / 100 - 1], count, bad, us[count - 1]);
    free(us);
    return bad != 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "echo")) return echo(atoi(argv[2]));
    if (argc == 3 && !strcmp(argv[1], "sink")) return sink(atoi(argv[2]));
    if (argc == 5 && !strcmp(argv[1], "ping"))
        return ping(atoi(argv[2]), atoi(argv[3]), strtoul(argv[4], 0, 10));
    if (argc == 5 && !strcmp(argv[1], "source"))
        return source(atoi(argv[2]), atoi(argv[3]), strtoul(argv[4], 0, 10));
    if (argc == 3 && !strcmp(argv[1], "host-echo")) return host_echo(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "host-ping"))
        return host_ping(argv[2], atoi(argv[3]), strtoul(argv[4], 0, 10));
    if (argc == 5 && !strcmp(argv[1], "rtt"))
        return rtt(atoi(argv[2]), atoi(argv[3]), strtoul(argv[4], 0, 10));
    fprintf(stderr, "usage: vsock-tool echo PORT | ping CID PORT BYTES | sink PORT | source CID PORT BYTES"
                    " | rtt CID PORT COUNT | host-echo PATH | host-ping PATH PORT BYTES\n");
    return 2;
}
