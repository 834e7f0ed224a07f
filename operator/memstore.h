/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator/memstore: a struct credentials_store in this process's memory, with the stores'
 * check-and-set rules (create fails with -EEXIST when the record exists, update with -ESTALE
 * when its version is not the one read; versions count from 1). The operator's ephemeral backend
 * (--secret-backend=ephemeral) and the tests' store. Values in secure memory, wiped on free.
 * Not thread-safe: the credentials manager calls its store under its own lock.
 */
#pragma once

#include <stddef.h>

#include "operator/credentials.h"

#define MEMSTORE_MAX_RECORDS 8

struct memstore;

int memstore_new(struct memstore **ret);
/* Wipes and frees. Accepts NULL. Returns NULL. */
struct memstore *memstore_free(struct memstore *m);

/* The store's operations, with m as their userdata. */
struct credentials_store memstore_ops(struct memstore *m);

/* The record as stored (borrowed; NULL when absent), for tests that inspect or damage it. */
struct credentials_record *memstore_find(struct memstore *m, const char *name);
/* How many records exist. */
size_t memstore_count(const struct memstore *m);
