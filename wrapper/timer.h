/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wrapper/timer: the monotonic clock, jitter, and timerfd helpers the supervisor and its vault
 * agent share. Nothing here logs; every function may be called from any thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t timer_now_ms(void);
/* A random value in 0..max (getrandom, a clock-derived value when that fails). */
uint64_t timer_jitter(uint64_t max);
/* One-shot expiry in ms (0 fires at once). 0 or -errno. */
int timer_arm(int tfd, uint64_t ms);
void timer_disarm(int tfd);
/* Consumes a timer's expiry; false when there was none (a timer disarmed meanwhile). */
bool timer_ack(int tfd);
