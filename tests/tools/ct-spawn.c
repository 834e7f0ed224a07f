/* SPDX-License-Identifier: Apache-2.0 */
/* ct-spawn: the floor for the wrapper's start-up benchmark: a static program that only starts
 * its arguments as a child (posix_spawn, as the wrapper does), waits, and exits with its status. */
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv) {
        pid_t pid;
        int st;
        if (argc == 2 && strcmp(argv[1], "--version") == 0) {
                printf("ct-spawn %s\n", CLOUDTASER_VERSION);
                return 0;
        }
        if (argc < 2 || posix_spawn(&pid, argv[1], NULL, NULL, argv + 1, environ) != 0)
                return 127;
        if (waitpid(pid, &st, 0) < 0)
                return 70;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
