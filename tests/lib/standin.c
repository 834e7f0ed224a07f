/* SPDX-License-Identifier: Apache-2.0 */
/*
 * standin.c: start/stop the stand-in Vault from C tests and talk to its control listener.
 */
#include "standin.h"

#include "common/kube.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../common/macro.h"

#define PYTHON "/usr/bin/python3"
#define BASH "/bin/bash"

static long long now_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int join(const char *a, const char *b, char **ret) {
        char *s = NULL;

        if (asprintf(&s, "%s/%s", a, b) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static bool is_file(const char *p) {
        struct stat st;

        return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* $CLOUDTASER_TOP/tests/standin, else walk up from the executable's directory. */
static int find_standin_dir(char **ret) {
        const char *top = getenv("CLOUDTASER_TOP");
        char exe[PATH_MAX];
        ssize_t n;

        if (top && *top) {
                _cleanup_free_ char *d = NULL, *f = NULL;

                if (join(top, "tests/standin", &d) < 0 || join(d, "vault.py", &f) < 0)
                        return -ENOMEM;
                if (is_file(f)) {
                        *ret = TAKE_PTR(d);
                        return 0;
                }
        }
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0)
                return -ENOENT;
        exe[n] = '\0';
        for (int up = 0; up < 8; up++) {
                char *slash = strrchr(exe, '/');
                _cleanup_free_ char *d = NULL, *f = NULL;

                if (!slash)
                        break;
                *slash = '\0';
                if (join(exe[0] ? exe : "", "tests/standin", &d) < 0 || join(d, "vault.py", &f) < 0)
                        return -ENOMEM;
                if (is_file(f)) {
                        *ret = TAKE_PTR(d);
                        return 0;
                }
        }
        return -ENOENT;
}

static int write_file(const char *path, const char *text, mode_t mode) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        size_t len = strlen(text), off = 0;

        if (fd < 0)
                return negative_errno();
        while (off < len) {
                ssize_t w = write(fd, text + off, len - off);

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                off += (size_t) w;
        }
        return 0;
}

/* Reads a small file into a NUL-terminated buffer (at most max bytes). */
static int read_file(const char *path, size_t max, char **ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;

        if (fd < 0)
                return negative_errno();
        buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t r;

                if (len == max)
                        return -E2BIG;
                r = read(fd, buf + len, max - len);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (r == 0)
                        break;
                len += (size_t) r;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

static void close_inherited_fds(void) {
        long max = sysconf(_SC_OPEN_MAX);

        if (max < 0 || max > 65536)
                max = 65536;
        for (int fd = 3; fd < max; fd++)
                (void) close(fd);
}

/* fork+exec argv[0] with argv; stdout to /dev/null, stderr inherited. The child gets SIGTERM if
 * the test process dies. */
static int spawn(char *const argv[], pid_t *ret_pid) {
        pid_t parent = getpid();
        pid_t pid = fork();

        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                int devnull;
                sigset_t all;

                (void) sigemptyset(&all);
                (void) sigprocmask(SIG_SETMASK, &all, NULL);
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent)
                        _exit(127);
                devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (devnull >= 0) {
                        (void) dup2(devnull, STDIN_FILENO);
                        (void) dup2(devnull, STDOUT_FILENO);
                }
                close_inherited_fds();
                execv(argv[0], argv);
                _exit(127);
        }
        *ret_pid = pid;
        return 0;
}

static int wait_exit(pid_t pid, int *ret_status) {
        int status;

        while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR)
                        return negative_errno();
        }
        *ret_status = status;
        return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
        (void) sb;
        (void) type;
        (void) ftw;
        (void) remove(path);
        return 0;
}

static void rm_rf(const char *dir) {
        if (dir)
                (void) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int standin_json_str(const char *json, const char *key, char **ret) {
        _cleanup_free_ char *pat = NULL;
        const char *p, *end;
        char *v;

        if (!json || !key)
                return -EINVAL;
        if (asprintf(&pat, "\"%s\"", key) < 0)
                return -ENOMEM;
        for (p = strstr(json, pat); p; p = strstr(p + 1, pat)) {
                const char *q = p + strlen(pat);

                while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
                        q++;
                if (*q != ':')
                        continue;
                q++;
                while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
                        q++;
                if (*q != '"')
                        continue;
                q++;
                end = strchr(q, '"');
                if (!end)
                        return -EBADMSG;
                v = strndup(q, (size_t) (end - q));
                if (!v)
                        return -ENOMEM;
                if (strchr(v, '\\')) {
                        free(v);
                        return -EBADMSG;
                }
                *ret = v;
                return 0;
        }
        return -ENOENT;
}

static int parse_port(const char *url, unsigned *ret) {
        const char *colon = strrchr(url, ':');
        char *end = NULL;
        unsigned long v;

        if (!colon)
                return -EINVAL;
        errno = 0;
        v = strtoul(colon + 1, &end, 10);
        if (errno != 0 || end == colon + 1 || *end != '\0' || v == 0 || v > 65535)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static void standin_free(struct standin *s) {
        if (!s)
                return;
        free(s->dir);
        free(s->addr);
        free(s->control_addr);
        free(s->ca_path);
        free(s->client_cert_path);
        free(s->client_key_path);
        free(s->audit_path);
        free(s->root_token);
        free(s);
}

void standin_stop(struct standin *s) {
        if (!s)
                return;
        if (s->pid > 0) {
                int status;
                long long deadline = now_ms() + STANDIN_STOP_TIMEOUT_MS;
                bool reaped = false;

                (void) kill(s->pid, SIGTERM);
                while (now_ms() < deadline) {
                        pid_t r = waitpid(s->pid, &status, WNOHANG);

                        if (r == s->pid || (r < 0 && errno != EINTR)) {
                                reaped = true;
                                break;
                        }
                        sleep_ms(10);
                }
                if (!reaped) {
                        fprintf(stderr, "standin: pid %d ignored SIGTERM, killing it\n",
                                (int) s->pid);
                        (void) kill(s->pid, SIGKILL);
                        (void) wait_exit(s->pid, &status);
                }
                s->pid = 0;
        }
        rm_rf(s->dir);
        standin_free(s);
}

static int random_token(char **ret) {
        uint8_t b[16];
        char *t;
        size_t off;

        if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b))
                return -EIO;
        t = malloc(4 + 2 * sizeof(b) + 1);
        if (!t)
                return -ENOMEM;
        memcpy(t, "hvs.", 4);
        off = 4;
        for (size_t i = 0; i < sizeof(b); i++) {
                static const char hex[] = "0123456789abcdef";

                t[off++] = hex[b[i] >> 4];
                t[off++] = hex[b[i] & 15];
        }
        t[off] = '\0';
        *ret = t;
        return 0;
}

static const char default_config[] =
        "{\"mounts\":[{\"path\":\"secret\",\"type\":\"kv\",\"options\":{\"version\":\"2\"}},"
        "{\"path\":\"kv\",\"type\":\"kv\",\"options\":{\"version\":\"1\"}}],"
        "\"auth\":[{\"path\":\"kubernetes\",\"type\":\"kubernetes\",\"roles\":{}}]}\n";

static void cleanup_standin(struct standin **s) {
        standin_stop(*s);
}

static int start(bool kube, const char *config_json, struct standin **ret) {
        _cleanup_(cleanup_standin) struct standin *s = NULL;
        _cleanup_free_ char *sdir = NULL, *script = NULL, *mkcerts = NULL, *pki = NULL;
        _cleanup_free_ char *cfg = NULL, *tokfile = NULL, *ready = NULL, *cert = NULL;
        _cleanup_free_ char *key = NULL, *readytext = NULL;
        const char *tmp = getenv("TMPDIR");
        char templ[PATH_MAX];
        long long deadline;
        int r, status;
        pid_t pid;

        r = find_standin_dir(&sdir);
        if (r < 0) {
                fprintf(stderr, "standin: cannot find tests/standin/vault.py "
                                "(set CLOUDTASER_TOP to the repository root)\n");
                return r;
        }
        if (join(sdir, kube ? "kube_apiserver.py" : "vault.py", &script) < 0 ||
            join(sdir, "mkcerts.sh", &mkcerts) < 0)
                return -ENOMEM;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        if (snprintf(templ, sizeof(templ), "%s/standin.XXXXXX", tmp && *tmp ? tmp : "/tmp") >=
            (int) sizeof(templ))
                return -ENAMETOOLONG;
        if (!mkdtemp(templ))
                return negative_errno();
        s->dir = strdup(templ);
        if (!s->dir)
                return -ENOMEM;

        if (join(s->dir, "pki", &pki) < 0 || join(pki, "ca.pem", &s->ca_path) < 0 ||
            join(pki, "server.pem", &cert) < 0 || join(pki, "server-key.pem", &key) < 0 ||
            join(pki, "client.pem", &s->client_cert_path) < 0 ||
            join(pki, "client-key.pem", &s->client_key_path) < 0 ||
            join(s->dir, "config.json", &cfg) < 0 || join(s->dir, "root-token", &tokfile) < 0 ||
            join(s->dir, "ready.json", &ready) < 0 || join(s->dir, "audit.log", &s->audit_path) < 0)
                return -ENOMEM;

        {
                char *argv[] = {(char *) BASH, mkcerts, pki, NULL};

                r = spawn(argv, &pid);
                if (r < 0)
                        return r;
                r = wait_exit(pid, &status);
                if (r < 0)
                        return r;
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        fprintf(stderr, "standin: %s failed (status 0x%x)\n", mkcerts, status);
                        return -EIO;
                }
        }

        r = random_token(&s->root_token);
        if (r < 0)
                return r;
        r = write_file(tokfile, s->root_token, 0600);
        if (r < 0)
                return r;
        char kube_config[256];
        if (kube && !config_json) {
                (void) snprintf(kube_config, sizeof(kube_config),
                                "{\"users\":{\"admin\":{\"token\":\"%s\",\"groups\":"
                                "[\"system:masters\"]}}}",
                                s->root_token);
                config_json = kube_config;
        }
        r = write_file(cfg, config_json ? config_json : default_config, 0600);
        if (r < 0)
                return r;

        {
                char *argv[] = {(char *) PYTHON,
                                script,
                                (char *) "--config",
                                cfg,
                                (char *) "--root-token-file",
                                tokfile,
                                (char *) "--listen",
                                (char *) "127.0.0.1:0",
                                (char *) "--control-listen",
                                (char *) "127.0.0.1:0",
                                (char *) "--tls-cert",
                                cert,
                                (char *) "--tls-key",
                                key,
                                (char *) "--tls-client-ca",
                                s->ca_path,
                                (char *) "--ready-file",
                                ready,
                                (char *) "--audit-log",
                                s->audit_path,
                                NULL};
                char *kargv[] = {(char *) PYTHON,
                                 script,
                                 (char *) "--config",
                                 cfg,
                                 (char *) "--listen",
                                 (char *) "127.0.0.1:0",
                                 (char *) "--control-listen",
                                 (char *) "127.0.0.1:0",
                                 (char *) "--tls-cert",
                                 cert,
                                 (char *) "--tls-key",
                                 key,
                                 (char *) "--ca-cert",
                                 s->ca_path,
                                 (char *) "--ready-file",
                                 ready,
                                 (char *) "--audit-log",
                                 s->audit_path,
                                 NULL};

                r = spawn(kube ? kargv : argv, &s->pid);
                if (r < 0)
                        return r;
        }

        deadline = now_ms() + STANDIN_READY_TIMEOUT_MS;
        for (;;) {
                pid_t w = waitpid(s->pid, &status, WNOHANG);

                if (w == s->pid) {
                        s->pid = 0;
                        fprintf(stderr, "standin: %s exited before it was ready (status 0x%x)\n",
                                script, status);
                        return -ECHILD;
                }
                if (read_file(ready, 4096, &readytext) == 0)
                        break;
                if (now_ms() >= deadline) {
                        fprintf(stderr, "standin: no ready file %s after %d ms\n", ready,
                                STANDIN_READY_TIMEOUT_MS);
                        return -ETIMEDOUT;
                }
                sleep_ms(20);
        }
        r = standin_json_str(readytext, "addr", &s->addr);
        if (r < 0)
                return r;
        r = standin_json_str(readytext, "control_addr", &s->control_addr);
        if (r < 0)
                return r;
        r = parse_port(s->control_addr, &s->control_port);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int standin_start(const char *config_json, struct standin **ret) {
        return start(false, config_json, ret);
}

int standin_start_kube(const char *config_json, struct standin **ret) {
        return start(true, config_json, ret);
}

static int write_all(int fd, const char *p, size_t len) {
        while (len > 0) {
                ssize_t w = send(fd, p, len, MSG_NOSIGNAL);

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += w;
                len -= (size_t) w;
        }
        return 0;
}

int standin_control(const struct standin *s, const char *method, const char *path, const char *body,
                    int *ret_status, char **ret_body) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *req = NULL, *resp = NULL;
        size_t blen = body ? strlen(body) : 0, len = 0;
        const char *hdr_end, *sp;
        long long deadline = now_ms() + 30000;
        char *end = NULL;
        long status;
        int r;

        if (!s || !method || !path || path[0] != '/')
                return -EINVAL;
        sa.sin_port = htons((uint16_t) s->control_port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return negative_errno();
        if (asprintf(&req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     method, path, s->control_port, blen) < 0)
                return -ENOMEM;
        r = write_all(fd, req, strlen(req));
        if (r < 0)
                return r;
        if (blen > 0) {
                r = write_all(fd, body, blen);
                if (r < 0)
                        return r;
        }
        resp = malloc(STANDIN_CONTROL_MAX + 1);
        if (!resp)
                return -ENOMEM;
        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                long long left = deadline - now_ms();
                ssize_t n;

                if (left <= 0)
                        return -ETIMEDOUT;
                r = poll(&pfd, 1, (int) left);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (r == 0)
                        return -ETIMEDOUT;
                if (len == STANDIN_CONTROL_MAX)
                        return -E2BIG;
                n = recv(fd, resp + len, STANDIN_CONTROL_MAX - len, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        resp[len] = '\0';
        if (strncmp(resp, "HTTP/1.", 7) != 0)
                return -EPROTO;
        sp = strchr(resp, ' ');
        if (!sp)
                return -EPROTO;
        errno = 0;
        status = strtol(sp + 1, &end, 10);
        if (errno != 0 || end == sp + 1 || status < 100 || status > 599)
                return -EPROTO;
        hdr_end = strstr(resp, "\r\n\r\n");
        if (!hdr_end)
                return -EPROTO;
        if (ret_body) {
                char *b = strdup(hdr_end + 4);

                if (!b)
                        return -ENOMEM;
                *ret_body = b;
        }
        if (ret_status)
                *ret_status = (int) status;
        return 0;
}

static bool json_safe(const char *v) {
        for (; *v; v++)
                if (*v == '"' || *v == '\\' || (unsigned char) *v < 0x20)
                        return false;
        return true;
}

int standin_make_jwt(const struct standin *s, const char *namespace, const char *service_account,
                     const char *audience, long ttl_seconds, char **ret_jwt) {
        _cleanup_free_ char *body = NULL, *reply = NULL, *aud = NULL;
        int r, status = 0;

        if (!s || !namespace || !service_account || !json_safe(namespace) ||
            !json_safe(service_account) || (audience && !json_safe(audience)))
                return -EINVAL;
        if (audience && asprintf(&aud, ",\"audience\":\"%s\"", audience) < 0)
                return -ENOMEM;
        if (asprintf(&body, "{\"namespace\":\"%s\",\"service_account\":\"%s\",\"ttl\":%ld%s}",
                     namespace, service_account, ttl_seconds > 0 ? ttl_seconds : 3600L,
                     aud ? aud : "") < 0)
                return -ENOMEM;
        r = standin_control(s, "POST", "/_standin/jwt", body, &status, &reply);
        if (r < 0)
                return r;
        if (status != 200) {
                fprintf(stderr, "standin: /_standin/jwt answered %d: %s\n", status, reply);
                return -EPROTO;
        }
        return standin_json_str(reply, "jwt", ret_jwt);
}

int standin_kube_client(const struct standin *s, struct kube_client **ret) {
        struct kube_config *c = NULL;
        struct kube_error e = {};
        char tok[4096];
        if (!s || !ret)
                return -EINVAL;
        if ((size_t) snprintf(tok, sizeof(tok), "%s/kube-token", s->dir) >= sizeof(tok))
                return -ENAMETOOLONG;
        int fd = open(tok, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        ssize_t w = write(fd, s->root_token, strlen(s->root_token));
        (void) close(fd);
        if (w != (ssize_t) strlen(s->root_token))
                return -EIO;
        int r = kube_config_new(s->addr, s->ca_path, tok, &c, &e);
        if (r >= 0)
                r = kube_client_new(&c, NULL, ret);
        if (r < 0)
                fprintf(stderr, "standin: kube client: %s\n", e.message);
        kube_config_free(c);
        return r;
}
