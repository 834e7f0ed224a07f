/* SPDX-License-Identifier: Apache-2.0 */
#include "common/caps.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/macro.h"

static enum caps_bounding_state bounding_state = CAPS_BOUNDING_UNTOUCHED;

static void cap_freep(cap_t *p) {
        if (*p)
                (void) cap_free(*p);
}
#define _cleanup_cap_ _cleanup_(cap_freep)

/* libcap asks the kernel (it probes the bounding set once); never more than a 64-bit mask. */
static unsigned last_cap(void) {
        int bits = (int) cap_max_bits();
        return (unsigned) MIN(MAX(bits, 1), 64) - 1;
}

static int flag_mask(cap_t c, cap_flag_t flag, unsigned last, uint64_t *ret) {
        uint64_t m = 0;
        for (unsigned i = 0; i <= last; i++) {
                cap_flag_value_t v = CAP_CLEAR;
                if (cap_get_flag(c, (cap_value_t) i, flag, &v) < 0)
                        return negative_errno();
                if (v == CAP_SET)
                        m |= UINT64_C(1) << i;
        }
        *ret = m;
        return 0;
}

#define STATUS_MAX 8192 /* /proc/thread-self/status is ~1.5 KiB */

/* The "key:\t<16 hex digits>" line of a status text. */
static int status_mask(const char *text, const char *key, uint64_t *ret) {
        size_t klen = strlen(key);
        for (const char *p = text; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                if (strncmp(p, key, klen) != 0 || p[klen] != ':')
                        continue;
                char *end = NULL;
                errno = 0;
                unsigned long long v = strtoull(p + klen + 1, &end, 16);
                if (errno != 0 || end == p + klen + 1 || (*end != '\n' && *end != '\0'))
                        return -EBADMSG;
                *ret = (uint64_t) v;
                return 0;
        }
        return -ENOENT;
}

/* The bounding and ambient sets of the calling thread in one read of /proc/thread-self/status
 * instead of one prctl per capability and set (PR_CAPBSET_READ, PR_CAP_AMBIENT_IS_SET). Without
 * /proc (or a kernel before 4.3 without CapAmb), the prctl loop. */
static int read_bounding_ambient(unsigned last, uint64_t *ret_bounding, uint64_t *ret_ambient) {
        char text[STATUS_MAX];
        size_t len = 0;
        uint64_t b = 0, a = 0;
        bool from_status = false;

        _cleanup_close_ int fd = open("/proc/thread-self/status", O_RDONLY | O_CLOEXEC);
        while (fd >= 0 && len < sizeof(text) - 1) {
                ssize_t n = read(fd, text + len, sizeof(text) - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        from_status = n == 0;
                        break;
                }
                len += (size_t) n;
        }
        if (from_status) {
                text[len] = '\0';
                from_status = status_mask(text, "CapBnd", &b) >= 0 &&
                              status_mask(text, "CapAmb", &a) >= 0;
        }
        if (!from_status) {
                b = a = 0;
                for (unsigned i = 0; i <= last; i++) {
                        int rb = cap_get_bound((cap_value_t) i);
                        int ra = cap_get_ambient((cap_value_t) i);
                        if (rb < 0 || ra < 0)
                                return negative_errno();
                        if (rb > 0)
                                b |= UINT64_C(1) << i;
                        if (ra > 0)
                                a |= UINT64_C(1) << i;
                }
        }
        uint64_t known = last >= 63 ? UINT64_MAX : (UINT64_C(1) << (last + 1)) - 1;
        *ret_bounding = b & known;
        *ret_ambient = a & known;
        return 0;
}

int caps_drop_except(const int *keep, size_t n_keep, unsigned flags) {
        unsigned last = last_cap();
        uint64_t want = 0, permitted = 0, effective = 0;
        int r;

        if (flags & ~(unsigned) CAPS_DROP_BOUNDING)
                return -EINVAL;
        if (n_keep > 0 && !keep)
                return -EINVAL;
        for (size_t i = 0; i < n_keep; i++) {
                if (keep[i] < 0 || (unsigned) keep[i] > last)
                        return -EINVAL;
                want |= UINT64_C(1) << keep[i];
        }

        _cleanup_cap_ cap_t cur = cap_get_proc();
        if (!cur)
                return negative_errno();
        r = flag_mask(cur, CAP_PERMITTED, last, &permitted);
        if (r < 0)
                return r;
        r = flag_mask(cur, CAP_EFFECTIVE, last, &effective);
        if (r < 0)
                return r;

        /* 1. Bounding set. PR_CAPBSET_DROP needs CAP_SETPCAP in the effective set. Only what
         * is still in the set is dropped (one prctl each, a container starts with about 14). */
        if (!(flags & CAPS_DROP_BOUNDING))
                bounding_state = CAPS_BOUNDING_KEPT;
        else if (!(effective & (UINT64_C(1) << CAP_SETPCAP)))
                bounding_state = CAPS_BOUNDING_KEPT_NO_SETPCAP;
        else {
                uint64_t bounding = 0, ambient = 0;
                r = read_bounding_ambient(last, &bounding, &ambient);
                if (r < 0)
                        return r;
                for (unsigned i = 0; i <= last; i++) {
                        if ((want & (UINT64_C(1) << i)) || !(bounding & (UINT64_C(1) << i)))
                                continue;
                        if (cap_drop_bound((cap_value_t) i) < 0)
                                return negative_errno();
                }
                bounding_state = CAPS_BOUNDING_DROPPED;
        }

        /* 2. Ambient set, in one call. It would also shrink with inheritable in step 3 (ambient
         * must stay a subset of permitted ∩ inheritable), but clearing it explicitly is checked
         * and does not depend on that rule. Kernels before 4.3 have no ambient set (EINVAL):
         * nothing to clear. (libcap's cap_reset_ambient() first asks about every capability.) */
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return negative_errno();

        /* 3. effective = permitted = keep ∩ permitted, inheritable = empty. */
        _cleanup_cap_ cap_t next = cap_init();
        if (!next)
                return negative_errno();
        for (unsigned i = 0; i <= last; i++) {
                cap_value_t v = (cap_value_t) i;
                if (!(want & permitted & (UINT64_C(1) << i)))
                        continue;
                if (cap_set_flag(next, CAP_EFFECTIVE, 1, &v, CAP_SET) < 0 ||
                    cap_set_flag(next, CAP_PERMITTED, 1, &v, CAP_SET) < 0)
                        return negative_errno();
        }
        if (cap_set_proc(next) < 0)
                return negative_errno();
        return 0;
}

int caps_report(struct caps_report *ret) {
        struct caps_report rep = {.last_cap = last_cap(), .bounding_state = bounding_state};
        int r;

        _cleanup_cap_ cap_t cur = cap_get_proc();
        if (!cur)
                return negative_errno();
        r = flag_mask(cur, CAP_EFFECTIVE, rep.last_cap, &rep.effective);
        if (r >= 0)
                r = flag_mask(cur, CAP_PERMITTED, rep.last_cap, &rep.permitted);
        if (r >= 0)
                r = flag_mask(cur, CAP_INHERITABLE, rep.last_cap, &rep.inheritable);
        if (r < 0)
                return r;
        r = read_bounding_ambient(rep.last_cap, &rep.bounding, &rep.ambient);
        if (r < 0)
                return r;
        rep.n_bounding = (unsigned) __builtin_popcountll(rep.bounding);
        rep.n_effective = (unsigned) __builtin_popcountll(rep.effective);
        rep.n_permitted = (unsigned) __builtin_popcountll(rep.permitted);
        *ret = rep;
        return 0;
}

/* Our own table (libcap's cap_to_name() allocates): the kernel's names, in value order. */
static const char *const cap_names[] = {
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
};

const char *caps_name(int cap) {
        if (cap < 0 || (size_t) cap >= ELEMENTSOF(cap_names))
                return NULL;
        return cap_names[cap];
}

const char *caps_bounding_state_to_string(enum caps_bounding_state s) {
        switch (s) {
        case CAPS_BOUNDING_UNTOUCHED:
                return "untouched";
        case CAPS_BOUNDING_KEPT:
                return "kept";
        case CAPS_BOUNDING_KEPT_NO_SETPCAP:
                return "kept-no-setpcap";
        case CAPS_BOUNDING_DROPPED:
                return "dropped";
        }
        return "?";
}
