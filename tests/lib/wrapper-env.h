/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wrapper-env.h: the property "every pod the webhook admits with an injection gets an environment
 * its wrapper accepts", for the operator's tests and fuzz targets. It links the wrapper's own
 * configuration reader (wrapper/config.c), which tests may; operator/ itself never does.
 *
 * For each wrapped container of a pod (command[0] is the wrapper, INJECTION_WRAPPER_PATH) it
 * builds what the kubelet gives the process: env entries in order, each literal value expanded as
 * Kubernetes does ("$$" is "$", "$(NAME)" the value of an earlier NAME, anything else verbatim),
 * and argv command ++ args expanded the same way. A valueFrom entry, or an envFrom, cannot be
 * known here: VAULT_TOKEN from one gets a stand-in value (a token is delivered), any other such
 * variable is left unset. Then it runs config_parse() over them.
 */
#pragma once

#include <stddef.h>

#include "common/json.h"

/* Returns 0 when every wrapped container's configuration parses (*ret_wrapped: how many were
 * checked, optional); -EINVAL with reason "container NAME: WHY" for the first that does not;
 * -ENOMEM. */
int test_wrapper_accepts_pod(const struct json_value *pod, size_t *ret_wrapped, char *reason,
                             size_t reason_len);
