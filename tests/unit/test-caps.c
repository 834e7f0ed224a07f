/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/caps. Capability drops are irreversible, so every scenario runs in a
 * forked child that sends its results back over a pipe; the parent turns them into TAP lines and
 * checks the child's exit status. The kernel's view (/proc/self/status) is the oracle, and each
 * "capability is gone" check has a positive control with the capability still held. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include "common/caps.h"
#include "common/macro.h"
#include "tests/lib/tap-child.h"
#include "tests/tap.h"

#define OTHER_UID 12345
#define MEMLOCK_LIMIT (64 * 1024)
#define MLOCK_SIZE (4 * 1024 * 1024)

/* --- results from a forked child -------------------------------------------------------------- */

/* --- the kernel's view ------------------------------------------------------------------------ */

/* The hex mask of a "CapXxx:" line of /proc/self/status. */
static int status_mask(const char *key, uint64_t *ret) {
        char text[8192];
        int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, text, sizeof(text) - 1);
        close(fd);
        if (n <= 0)
                return -EIO;
        text[n] = '\0';
        size_t klen = strlen(key);
        for (char *p = text; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                if (strncmp(p, key, klen) != 0 || p[klen] != ':')
                        continue;
                char *end = NULL;
                errno = 0;
                unsigned long long v = strtoull(p + klen + 1, &end, 16);
                if (errno != 0 || end == p + klen + 1)
                        return -EBADMSG;
                *ret = v;
                return 0;
        }
        return -ENOENT;
}

static uint64_t mask(const char *key) {
        uint64_t m = UINT64_MAX;
        if (status_mask(key, &m) < 0)
                c_diag("cannot read %s", key);
        return m;
}

#define BIT(c) (UINT64_C(1) << (c))

/* --- scenarios -------------------------------------------------------------------------------- */

static const int keep_ipc_lock[] = {CAP_IPC_LOCK};

/* caps_report()'s bounding and ambient sets against the kernel's answers one capability at a
 * time (PR_CAPBSET_READ, PR_CAP_AMBIENT_IS_SET). */
static void check_report_matches_prctl(const char *when) {
        struct caps_report rep = {};
        int r = caps_report(&rep);
        uint64_t b = 0, a = 0;
        for (unsigned i = 0; r == 0 && i <= rep.last_cap; i++) {
                if (prctl(PR_CAPBSET_READ, i, 0, 0, 0) == 1)
                        b |= BIT(i);
                if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, i, 0, 0) == 1)
                        a |= BIT(i);
        }
        c_ok(r == 0 && rep.bounding == b && rep.ambient == a &&
                     rep.n_bounding == (unsigned) __builtin_popcountll(b),
             "%s: the report's bounding %016" PRIx64 " and ambient %016" PRIx64
             " are the kernel's (%016" PRIx64 ", %016" PRIx64 ")",
             when, rep.bounding, rep.ambient, b, a);
}

static void t_drop_keep_ipc_lock(void) {
        uint64_t bnd_before = mask("CapBnd");
        int r = caps_drop_except(keep_ipc_lock, 1, 0);
        c_ok(r == 0, "caps_drop_except({CAP_IPC_LOCK}, 0) = %d", r);
        uint64_t eff = mask("CapEff"), prm = mask("CapPrm");
        c_ok(eff == BIT(CAP_IPC_LOCK), "CapEff is exactly CAP_IPC_LOCK (%016" PRIx64 ")", eff);
        c_ok(prm == BIT(CAP_IPC_LOCK), "CapPrm is exactly CAP_IPC_LOCK (%016" PRIx64 ")", prm);
        c_ok(mask("CapInh") == 0, "CapInh is empty");
        c_ok(mask("CapAmb") == 0, "CapAmb is empty");
        c_ok(mask("CapBnd") == bnd_before, "bounding set untouched without CAPS_DROP_BOUNDING");

        struct caps_report rep = {};
        r = caps_report(&rep);
        c_ok(r == 0 && rep.effective == eff && rep.permitted == prm && rep.n_effective == 1 &&
                     rep.n_permitted == 1 && rep.bounding == bnd_before,
             "caps_report agrees with /proc/self/status (%d)", r);
        c_ok(rep.bounding_state == CAPS_BOUNDING_KEPT, "report says the bounding set was kept (%s)",
             caps_bounding_state_to_string(rep.bounding_state));

        /* A capability not permitted any more cannot come back through keep. */
        static const int keep_more[] = {CAP_IPC_LOCK, CAP_CHOWN, CAP_SYS_ADMIN};
        r = caps_drop_except(keep_more, ELEMENTSOF(keep_more), 0);
        c_ok(r == 0 && mask("CapEff") == BIT(CAP_IPC_LOCK),
             "keeping a capability we no longer have does not regain it (%d)", r);
}

static void t_bounding(void) {
        /* One capability already out of the bounding set: the drop skips it. */
        c_ok(prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) == 0, "CAP_SYS_ADMIN dropped first");
        check_report_matches_prctl("a bounding set with a hole");
        uint64_t bnd_before = mask("CapBnd");
        int r = caps_drop_except(keep_ipc_lock, 1, CAPS_DROP_BOUNDING);
        c_ok(r == 0, "caps_drop_except({CAP_IPC_LOCK}, CAPS_DROP_BOUNDING) = %d", r);
        uint64_t bnd = mask("CapBnd");
        c_ok(bnd == (bnd_before & BIT(CAP_IPC_LOCK)),
             "CapBnd is CAP_IPC_LOCK only (%016" PRIx64 ")", bnd);
        c_ok(mask("CapEff") == BIT(CAP_IPC_LOCK) && mask("CapPrm") == BIT(CAP_IPC_LOCK),
             "CapEff/CapPrm are CAP_IPC_LOCK");
        struct caps_report rep = {};
        r = caps_report(&rep);
        c_ok(r == 0 && rep.bounding_state == CAPS_BOUNDING_DROPPED && rep.n_bounding == 1 &&
                     rep.bounding == bnd,
             "report says the bounding set was dropped (%s, %u)",
             caps_bounding_state_to_string(rep.bounding_state), rep.n_bounding);
}

static void t_bounding_without_setpcap(void) {
        uint64_t bnd_before = mask("CapBnd");
        int r = caps_drop_except(keep_ipc_lock, 1, 0);
        c_ok(r == 0, "first drop without the flag (%d)", r);
        r = caps_drop_except(keep_ipc_lock, 1, CAPS_DROP_BOUNDING);
        c_ok(r == 0, "CAPS_DROP_BOUNDING without CAP_SETPCAP is not an error (%d)", r);
        c_ok(mask("CapBnd") == bnd_before, "the bounding set is left as it was");
        struct caps_report rep = {};
        r = caps_report(&rep);
        c_ok(r == 0 && rep.bounding_state == CAPS_BOUNDING_KEPT_NO_SETPCAP, "report says why (%s)",
             caps_bounding_state_to_string(rep.bounding_state));
}

static void t_ambient_cleared(void) {
        /* Put CAP_NET_BIND_SERVICE in inheritable (raw capset), then raise it into ambient. */
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[2] = {};
        int r = (int) syscall(SYS_capget, &h, d);
        d[0].inheritable |= 1u << CAP_NET_BIND_SERVICE;
        if (r == 0)
                r = (int) syscall(SYS_capset, &h, d);
        if (r == 0)
                r = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0);
        c_ok(r == 0 && mask("CapAmb") == BIT(CAP_NET_BIND_SERVICE),
             "precondition: CAP_NET_BIND_SERVICE is ambient (%d)", r);
        check_report_matches_prctl("one ambient capability");
        static const int keep[] = {CAP_IPC_LOCK, CAP_NET_BIND_SERVICE};
        r = caps_drop_except(keep, ELEMENTSOF(keep), 0);
        c_ok(r == 0 && mask("CapAmb") == 0 && mask("CapInh") == 0,
             "ambient and inheritable are cleared even for a kept capability (%d)", r);
        c_ok(mask("CapEff") == (BIT(CAP_IPC_LOCK) | BIT(CAP_NET_BIND_SERVICE)),
             "both kept capabilities stay effective");
        check_report_matches_prctl("ambient cleared");
}

static char chown_path[] = "/tmp/cloudtaser-test-caps-XXXXXX";

static void t_chown_control(void) {
        int r = chown(chown_path, OTHER_UID, (gid_t) -1);
        c_ok(r == 0, "control: chown to uid %d works with CAP_CHOWN (%s)", OTHER_UID,
             r == 0 ? "ok" : strerror(errno));
        (void) !chown(chown_path, 0, (gid_t) -1);
}

static void t_chown_dropped(void) {
        int r = caps_drop_except(keep_ipc_lock, 1, 0);
        c_ok(r == 0, "dropped everything but CAP_IPC_LOCK (%d)", r);
        errno = 0;
        r = chown(chown_path, OTHER_UID, (gid_t) -1);
        c_ok(r < 0 && errno == EPERM, "chown to uid %d now fails with EPERM (%s)", OTHER_UID,
             r == 0 ? "succeeded" : strerror(errno));
}

/* mlock beyond a small RLIMIT_MEMLOCK: only CAP_IPC_LOCK allows it. */
static int mlock_big(void) {
        struct rlimit rl = {MEMLOCK_LIMIT, MEMLOCK_LIMIT};
        if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
                return -errno;
        void *p =
                mmap(NULL, MLOCK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return -errno;
        /* The raw syscall: ASan's mlock() interceptor is a no-op that returns 0. */
        int r = syscall(SYS_mlock, p, (size_t) MLOCK_SIZE) < 0 ? -errno : 0;
        (void) munmap(p, MLOCK_SIZE);
        return r;
}

static void t_mlock_kept(void) {
        int r = caps_drop_except(keep_ipc_lock, 1, CAPS_DROP_BOUNDING);
        c_ok(r == 0, "dropped everything but CAP_IPC_LOCK, bounding set too (%d)", r);
        r = mlock_big();
        c_ok(r == 0, "mlock of %d KiB over a %d KiB RLIMIT_MEMLOCK works (%s)", MLOCK_SIZE / 1024,
             MEMLOCK_LIMIT / 1024, strerror(-r));
}

static void t_mlock_dropped(void) {
        int r = caps_drop_except(NULL, 0, 0);
        c_ok(r == 0 && mask("CapEff") == 0 && mask("CapPrm") == 0, "dropped everything (%d)", r);
        r = mlock_big();
        c_ok(r == -ENOMEM || r == -EPERM, "without CAP_IPC_LOCK the same mlock fails (%s)",
             r == 0 ? "succeeded" : strerror(-r));
}

static void test_arguments(void) {
        static const int bad[] = {CAP_IPC_LOCK, 64};
        static const int neg[] = {-1};
        is_int(caps_drop_except(bad, ELEMENTSOF(bad), 0), -EINVAL, "capability 64 is -EINVAL");
        is_int(caps_drop_except(neg, 1, 0), -EINVAL, "capability -1 is -EINVAL");
        is_int(caps_drop_except(NULL, 1, 0), -EINVAL, "keep NULL with n_keep 1 is -EINVAL");
        is_int(caps_drop_except(keep_ipc_lock, 1, 1u << 7), -EINVAL, "unknown flag is -EINVAL");
        struct caps_report rep = {};
        int r = caps_report(&rep);
        ok(r == 0 && rep.bounding_state == CAPS_BOUNDING_UNTOUCHED,
           "rejected calls changed nothing (%s)",
           caps_bounding_state_to_string(rep.bounding_state));
        is_str(caps_name(CAP_IPC_LOCK), "CAP_IPC_LOCK", "caps_name(CAP_IPC_LOCK)");
        is_str(caps_name(CAP_CHOWN), "CAP_CHOWN", "caps_name(0)");
        is_str(caps_name(CAP_CHECKPOINT_RESTORE), "CAP_CHECKPOINT_RESTORE", "caps_name(40)");
        ok(caps_name(41) == NULL && caps_name(-1) == NULL, "unknown values have no name");
        ok(rep.last_cap >= CAP_IPC_LOCK && rep.last_cap < 64, "last_cap is sane (%u)",
           rep.last_cap);
}

int main(void) {
        test_arguments();

        uint64_t eff = 0;
        if (geteuid() != 0 || status_mask("CapEff", &eff) < 0 || !(eff & BIT(CAP_SETPCAP)) ||
            !(eff & BIT(CAP_CHOWN)) || !(eff & BIT(CAP_IPC_LOCK))) {
                skip(1, "the drop scenarios need root with CAP_SETPCAP, CAP_CHOWN, CAP_IPC_LOCK");
                return tap_done();
        }

        run_child("keep CAP_IPC_LOCK", t_drop_keep_ipc_lock);
        run_child("bounding set", t_bounding);
        run_child("bounding set without CAP_SETPCAP", t_bounding_without_setpcap);
        run_child("ambient", t_ambient_cleared);

        int fd = mkostemp(chown_path, O_CLOEXEC);
        if (fd < 0) {
                ok(false, "mkostemp: %s", strerror(errno));
        } else {
                close(fd);
                run_child("chown control", t_chown_control);
                run_child("CAP_CHOWN dropped", t_chown_dropped);
                (void) unlink(chown_path);
        }
        run_child("CAP_IPC_LOCK kept", t_mlock_kept);
        run_child("CAP_IPC_LOCK dropped", t_mlock_dropped);
        return tap_done();
}
