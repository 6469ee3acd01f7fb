/* fork + execve + wait4 through the runner, with no libc. */
#include "nolibc.h"

int main(int argc, char **argv, char **envp) {
    if (argc > 1 && streq(argv[1], "child")) {
        puts_("child running as ");
        puts_(argv[0]);
        puts_("\n");
        return 7;
    }
    long pid = sys3(220, 17 /* SIGCHLD */, 0, 0); /* clone = fork */
    if (pid < 0) { puts_("fork failed\n"); return 1; }
    if (pid == 0) {
        char *args[] = {"/proc/self/exe", "child", 0};
        sys3(221, "/proc/self/exe", args, envp);
        puts_("execve failed\n");
        exit_(99);
    }
    int status = 0;
    long r = sys6(260, pid, (long)&status, 0, 0, 0, 0);
    puts_("parent: wait4 ");
    putnum(r == pid);
    puts_(" status ");
    putnum((status >> 8) & 0xff);
    puts_("\n");
    /* Touch an unmapped address last: the runner must die by SIGSEGV. */
    if (argc > 1 && streq(argv[1], "crash")) *(volatile int *)16 = 1;
    return 0;
}
