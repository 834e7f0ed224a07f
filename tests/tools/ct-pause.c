/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ct-pause: the pod sandbox's process for the test cluster (tests/cluster/), in place of the
 * upstream pause image, which this machine cannot pull. Like it, it holds the pod's namespaces
 * open: it sleeps until SIGINT or SIGTERM (exit 0), and reaps any child that is re-parented to it
 * (it is PID 1 of the pod's PID namespace when the pod shares one).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
        sigset_t set;
        int sig;

        if (argc > 1 && strcmp(argv[1], "--version") == 0) {
                puts("ct-pause");
                return 0;
        }
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
                return 1;
        for (;;) {
                if (sigwait(&set, &sig) != 0)
                        continue;
                if (sig == SIGCHLD) {
                        while (waitpid(-1, NULL, WNOHANG) > 0)
                                ;
                        continue;
                }
                return 0;
        }
}
