/* SPDX-License-Identifier: Apache-2.0 */
/* wrapper/timer: see timer.h. */
#include <errno.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "wrapper/timer.h"

uint64_t timer_now_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

uint64_t timer_jitter(uint64_t max) {
        uint64_t x = 0;
        if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t) sizeof(x))
                x = timer_now_ms() * UINT64_C(6364136223846793005);
        return max ? x % (max + 1) : 0;
}

int timer_arm(int tfd, uint64_t ms) {
        struct itimerspec its = {.it_value = {.tv_sec = (time_t) (ms / 1000),
                                              .tv_nsec = (long) (ms % 1000) * 1000000}};
        if (ms == 0)
                its.it_value.tv_nsec = 1; /* 0 would disarm */
        return timerfd_settime(tfd, 0, &its, NULL) < 0 ? negative_errno() : 0;
}

void timer_disarm(int tfd) {
        struct itimerspec its = {};
        (void) timerfd_settime(tfd, 0, &its, NULL);
}

bool timer_ack(int tfd) {
        uint64_t n;
        return read(tfd, &n, sizeof(n)) == (ssize_t) sizeof(n);
}
