/* SPDX-License-Identifier: Apache-2.0 */
/*
 * init/sha256: the FIPS 180-4 / NIST CAVS example vectors, then pseudo-random inputs of every
 * length from 0 to 300 bytes (all the padding boundaries: 55, 56, 63, 64, 119, 120, 128...) and a
 * few large ones, each compared with what coreutils' sha256sum prints for the same bytes, and each
 * hashed whole, byte by byte and in random pieces. Then the hex helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sha256.h"
#include "tests/tap.h"

extern char **environ;

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void) { /* xorshift64*: reproducible inputs */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545f4914f6cdd1du;
}

static void hex_of(const void *data, size_t len, char ret[SHA256_HEX_SIZE]) {
        uint8_t d[SHA256_DIGEST_SIZE];
        sha256_buffer(data, len, d);
        sha256_to_hex(d, ret);
}

/* The same input fed in pieces: size 1 when step is 1, else random sizes up to 200. */
static void hex_of_pieces(const uint8_t *data, size_t len, size_t step, char ret[SHA256_HEX_SIZE]) {
        struct sha256_ctx c;
        uint8_t d[SHA256_DIGEST_SIZE];
        sha256_init(&c);
        sha256_update(&c, data, 0);
        for (size_t off = 0; off < len;) {
                size_t n = step == 1 ? 1 : (size_t) (rng() % 200);
                if (n > len - off)
                        n = len - off;
                sha256_update(&c, data + off, n);
                off += n;
        }
        sha256_final(&c, d);
        sha256_to_hex(d, ret);
}

/* Runs `sha256sum` with data on its stdin; its hex digest in ret. 0 or -errno. */
static int sha256sum(const uint8_t *data, size_t len, char ret[SHA256_HEX_SIZE]) {
        int in[2], out[2], status, r;
        posix_spawn_file_actions_t fa;
        char *argv[] = {(char *) "sha256sum", NULL};
        char buf[128];
        size_t got = 0;
        pid_t pid;

        if (pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                r = -errno;
                (void) close(in[0]);
                (void) close(in[1]);
                return r;
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        r = -posix_spawnp(&pid, "sha256sum", &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        (void) close(in[0]);
        (void) close(out[1]);
        if (r == 0) {
                for (size_t off = 0; off < len;) {
                        ssize_t n = write(in[1], data + off, len - off);
                        if (n <= 0) {
                                r = -EIO;
                                break;
                        }
                        off += (size_t) n;
                }
        }
        (void) close(in[1]);
        if (r == 0) {
                ssize_t n;
                while (got < sizeof(buf) - 1 &&
                       (n = read(out[0], buf + got, sizeof(buf) - 1 - got)) > 0)
                        got += (size_t) n;
                buf[got] = '\0';
        }
        (void) close(out[0]);
        if (r == 0) {
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got < 64 || buf[64] != ' ')
                        return -EPROTO;
                memcpy(ret, buf, 64);
                ret[64] = '\0';
        }
        return r;
}

static void test_vectors(void) {
        static const struct {
                const char *in;
                const char *hex;
        } v[] = {
                {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
                {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
                {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
                {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqk"
                 "lmnopqrlmnopqrsmnopqrstnopqrstu",
                 "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
        };
        char hex[SHA256_HEX_SIZE];
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                hex_of(v[i].in, strlen(v[i].in), hex);
                is_str(hex, v[i].hex, "NIST vector %zu (%zu bytes)", i, strlen(v[i].in));
        }
        /* One million 'a', fed in 1000 pieces. */
        struct sha256_ctx c;
        uint8_t d[SHA256_DIGEST_SIZE], a[1000];
        memset(a, 'a', sizeof(a));
        sha256_init(&c);
        for (int i = 0; i < 1000; i++)
                sha256_update(&c, a, sizeof(a));
        sha256_final(&c, d);
        sha256_to_hex(d, hex);
        is_str(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
               "NIST vector: one million 'a'");
        static const struct sha256_ctx zero;
        ok(memcmp(&c, &zero, sizeof(c)) == 0, "sha256_final wipes the context");
}

static void test_against_sha256sum(void) {
        static const size_t big[] = {1000, 4096 + 3, 65536, (1u << 20) + 17};
        size_t max = (1u << 20) + 17;
        uint8_t *data = malloc(max);
        char want[SHA256_HEX_SIZE], got[SHA256_HEX_SIZE], pieces[SHA256_HEX_SIZE],
                bytes[SHA256_HEX_SIZE];
        unsigned bad = 0, checked = 0;

        if (!data) {
                ok(false, "allocate the test input");
                return;
        }
        for (size_t i = 0; i < max; i++)
                data[i] = (uint8_t) rng();
        if (sha256sum(data, 3, want) < 0) {
                skip(2, "sha256sum (coreutils) cannot be run");
                free(data);
                return;
        }
        for (size_t len = 0; len <= 300 + (sizeof(big) / sizeof(big[0])); len++) {
                size_t n = len <= 300 ? len : big[len - 301];
                const uint8_t *p = data + (len <= 300 ? (rng() % 4096) : 0);
                if (sha256sum(p, n, want) < 0) {
                        diag("sha256sum failed for %zu bytes", n);
                        bad++;
                        continue;
                }
                hex_of(p, n, got);
                hex_of_pieces(p, n, 0, pieces);
                if (n <= 4096)
                        hex_of_pieces(p, n, 1, bytes);
                else
                        memcpy(bytes, got, sizeof(bytes));
                checked++;
                if (strcmp(want, got) != 0 || strcmp(want, pieces) != 0 ||
                    strcmp(want, bytes) != 0) {
                        diag("%zu bytes: sha256sum %s, whole %s, pieces %s, bytes %s", n, want, got,
                             pieces, bytes);
                        bad++;
                }
        }
        is_int(bad, 0,
               "%u inputs (0..300 bytes, 1000, 4099, 65536, 1 MiB + 17) hash as sha256sum says, "
               "whole, in random pieces and byte by byte",
               checked);
        ok(checked == 301 + (sizeof(big) / sizeof(big[0])), "every input was compared (%u)",
           checked);
        free(data);
}

static void test_hex(void) {
        uint8_t d[SHA256_DIGEST_SIZE], e[SHA256_DIGEST_SIZE];
        char hex[SHA256_HEX_SIZE], upper[SHA256_HEX_SIZE];
        hex_of("abc", 3, hex);
        is_int(sha256_from_hex(hex, d), 0, "from_hex accepts a digest");
        sha256_to_hex(d, upper);
        is_str(upper, hex, "hex round trip");
        for (int i = 0; hex[i]; i++)
                upper[i] = (char) (hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 32 : hex[i]);
        ok(sha256_from_hex(upper, e) == 0 && memcmp(d, e, sizeof(d)) == 0,
           "from_hex accepts upper case");
        memset(e, 0x5a, sizeof(e));
        hex[63] = '\0';
        is_int(sha256_from_hex(hex, e), -EINVAL, "from_hex refuses 63 digits");
        hex[63] = 'd';
        char longer[SHA256_HEX_SIZE + 1];
        memcpy(longer, hex, 64);
        longer[64] = '0';
        longer[65] = '\0';
        is_int(sha256_from_hex(longer, e), -EINVAL, "from_hex refuses 65 digits");
        hex[10] = 'g';
        is_int(sha256_from_hex(hex, e), -EINVAL, "from_hex refuses a non-hex digit");
        is_int(sha256_from_hex(NULL, e), -EINVAL, "from_hex refuses NULL");
        uint8_t pattern[SHA256_DIGEST_SIZE];
        memset(pattern, 0x5a, sizeof(pattern));
        ok(memcmp(e, pattern, sizeof(e)) == 0, "from_hex leaves the output untouched on failure");
}

int main(void) {
        (void) signal(SIGPIPE, SIG_IGN);
        test_vectors();
        test_against_sha256sum();
        test_hex();
        return tap_done();
}
