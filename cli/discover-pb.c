/* SPDX-License-Identifier: Apache-2.0 */
/* cli/discover-pb: a Kubernetes protobuf workload list as discover's JSON tree (see
 * discover-pb.h). A schema per message (the fields kept, their JSON names and how each is
 * decoded) and one walker over the protobuf wire format. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cli/discover-pb.h"
#include "common/macro.h"

enum pb_kind {
        PB_STRING,
        PB_VAULT_REF, /* a string kept only when it is a Bank-Vaults reference */
        PB_INT32,
        PB_MESSAGE,
        PB_REPEATED, /* repeated message: a JSON array */
        PB_MAP,      /* map<string, string>: a JSON object */
        PB_EMBED,    /* a message whose fields are the parent's in JSON (inline) */
};

struct pb_msg;
struct pb_field {
        uint32_t number;
        const char *key;
        enum pb_kind kind;
        const struct pb_msg *msg;
};
struct pb_msg {
        const struct pb_field *fields;
        size_t n;
};

#define PB_MSG(name, ...)                                             \
        static const struct pb_field name##_fields[] = {__VA_ARGS__}; \
        static const struct pb_msg name = {name##_fields, ELEMENTSOF(name##_fields)}

/* k8s.io/api core/v1 */
PB_MSG(local_ref, {1, "name", PB_STRING, NULL});
PB_MSG(key_selector, {1, NULL, PB_EMBED, &local_ref}, {2, "key", PB_STRING, NULL});
PB_MSG(env_source, {4, "secretKeyRef", PB_MESSAGE, &key_selector});
PB_MSG(env_var, {1, "name", PB_STRING, NULL}, {2, "value", PB_VAULT_REF, NULL},
       {3, "valueFrom", PB_MESSAGE, &env_source});
PB_MSG(secret_env_source, {1, NULL, PB_EMBED, &local_ref});
PB_MSG(env_from, {1, "prefix", PB_STRING, NULL}, {3, "secretRef", PB_MESSAGE, &secret_env_source});
PB_MSG(volume_mount, {1, "name", PB_STRING, NULL}, {3, "mountPath", PB_STRING, NULL});
PB_MSG(container, {7, "env", PB_REPEATED, &env_var},
       {9, "volumeMounts", PB_REPEATED, &volume_mount}, {19, "envFrom", PB_REPEATED, &env_from});
PB_MSG(key_to_path, {1, "key", PB_STRING, NULL});
PB_MSG(secret_volume, {1, "secretName", PB_STRING, NULL}, {2, "items", PB_REPEATED, &key_to_path});
PB_MSG(secret_projection, {1, NULL, PB_EMBED, &local_ref}, {2, "items", PB_REPEATED, &key_to_path});
PB_MSG(projection, {1, "secret", PB_MESSAGE, &secret_projection});
PB_MSG(projected, {1, "sources", PB_REPEATED, &projection});
PB_MSG(volume_source, {6, "secret", PB_MESSAGE, &secret_volume},
       {26, "projected", PB_MESSAGE, &projected});
PB_MSG(volume, {1, "name", PB_STRING, NULL}, {2, NULL, PB_EMBED, &volume_source});
PB_MSG(pod_spec, {1, "volumes", PB_REPEATED, &volume}, {2, "containers", PB_REPEATED, &container},
       {8, "serviceAccountName", PB_STRING, NULL}, {20, "initContainers", PB_REPEATED, &container});
PB_MSG(template_meta, {12, "annotations", PB_MAP, NULL});
PB_MSG(pod_template, {1, "metadata", PB_MESSAGE, &template_meta},
       {2, "spec", PB_MESSAGE, &pod_spec});
/* apimachinery meta/v1 */
PB_MSG(object_meta, {1, "name", PB_STRING, NULL}, {3, "namespace", PB_STRING, NULL});
PB_MSG(list_meta, {3, "continue", PB_STRING, NULL});
/* k8s.io/api apps/v1: Deployment and StatefulSet specs have replicas 1 and template 3, a
 * DaemonSet's has its template at 2. */
PB_MSG(replicated_spec, {1, "replicas", PB_INT32, NULL},
       {3, "template", PB_MESSAGE, &pod_template});
PB_MSG(daemon_spec, {2, "template", PB_MESSAGE, &pod_template});
PB_MSG(replicated, {1, "metadata", PB_MESSAGE, &object_meta},
       {2, "spec", PB_MESSAGE, &replicated_spec});
PB_MSG(daemon_set, {1, "metadata", PB_MESSAGE, &object_meta},
       {2, "spec", PB_MESSAGE, &daemon_spec});
PB_MSG(replicated_list, {1, "metadata", PB_MESSAGE, &list_meta},
       {2, "items", PB_REPEATED, &replicated});
PB_MSG(daemon_list, {1, "metadata", PB_MESSAGE, &list_meta},
       {2, "items", PB_REPEATED, &daemon_set});
/* apimachinery runtime.Unknown: typeMeta {apiVersion 1, kind 2}, raw 2, contentEncoding 3,
 * contentType 4 (read by hand below). */

#define PB_MAX_FIELDS 8 /* fields of one schema message */

struct rd {
        const uint8_t *p, *end;
};

static int rd_varint(struct rd *r, uint64_t *ret) {
        uint64_t x = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
                if (r->p >= r->end)
                        return -EBADMSG;
                uint8_t c = *r->p++;
                x |= (uint64_t) (c & 0x7f) << shift;
                if (!(c & 0x80)) {
                        *ret = x;
                        return 0;
                }
        }
        return -EBADMSG;
}

static int rd_bytes(struct rd *r, struct rd *ret) {
        uint64_t n;
        int e = rd_varint(r, &n);
        if (e < 0)
                return e;
        if (n > (uint64_t) (r->end - r->p))
                return -EBADMSG;
        *ret = (struct rd){r->p, r->p + n};
        r->p += n;
        return 0;
}

static int rd_skip(struct rd *r, unsigned wire) {
        uint64_t v;
        struct rd b;
        switch (wire) {
        case 0:
                return rd_varint(r, &v);
        case 1:
        case 5: {
                size_t n = wire == 1 ? 8 : 4;
                if ((size_t) (r->end - r->p) < n)
                        return -EBADMSG;
                r->p += n;
                return 0;
        }
        case 2:
                return rd_bytes(r, &b);
        default:
                return -EBADMSG; /* groups: not in Kubernetes' encoding */
        }
}

/* A json_add_* failure: what the input could cause is a malformed input. */
static int added(int r) {
        return r == -EINVAL || r == -ERANGE || r == -ELOOP ? -EBADMSG : r;
}

static bool vault_ref(const struct rd *s) {
        size_t n = (size_t) (s->end - s->p);
        return (n >= 6 && memcmp(s->p, "vault:", 6) == 0) ||
               (n >= 8 && memcmp(s->p, ">>vault:", 8) == 0);
}

static int map_entry(struct json_doc *d, struct json_value *obj, struct rd e) {
        struct rd key = {}, value = {};
        bool has_key = false, has_value = false;
        while (e.p < e.end) {
                uint64_t tag;
                int r = rd_varint(&e, &tag);
                if (r < 0)
                        return r;
                unsigned field = (unsigned) (tag >> 3), wire = (unsigned) (tag & 7);
                if ((field == 1 || field == 2) && wire == 2) {
                        bool *has = field == 1 ? &has_key : &has_value;
                        if (*has)
                                return -EBADMSG;
                        *has = true;
                        r = rd_bytes(&e, field == 1 ? &key : &value);
                } else
                        r = rd_skip(&e, wire);
                if (r < 0)
                        return r;
        }
        /* An annotation key is a qualified name: at most 253 + 1 + 63 bytes. */
        char k[320];
        size_t kn = (size_t) (key.end - key.p);
        if (kn >= sizeof(k) || (kn && memchr(key.p, '\0', kn)))
                return -EBADMSG;
        if (kn)
                memcpy(k, key.p, kn);
        k[kn] = '\0';
        return added(json_add_stringn(d, obj, k, (const char *) value.p,
                                      (size_t) (value.end - value.p)));
}

static int decode(struct json_doc *d, struct json_value *obj, const struct pb_msg *m,
                  struct rd in) {
        struct json_value *lists[PB_MAX_FIELDS] = {};
        uint64_t seen = 0;
        while (in.p < in.end) {
                uint64_t tag;
                int r = rd_varint(&in, &tag);
                if (r < 0)
                        return r;
                uint64_t number = tag >> 3;
                unsigned wire = (unsigned) (tag & 7);
                size_t i = 0;
                while (i < m->n && m->fields[i].number != number)
                        i++;
                if (i == m->n) {
                        r = rd_skip(&in, wire);
                        if (r < 0)
                                return r;
                        continue;
                }
                const struct pb_field *f = &m->fields[i];
                if (f->kind == PB_INT32) {
                        uint64_t v;
                        if (wire != 0 || (seen & (1ull << i)))
                                return -EBADMSG;
                        seen |= 1ull << i;
                        r = rd_varint(&in, &v);
                        if (r >= 0) /* int32: negative values come sign-extended to 64 bits */
                                r = added(json_add_int64(d, obj, f->key, (int32_t) (uint32_t) v));
                        if (r < 0)
                                return r;
                        continue;
                }
                struct rd b;
                if (wire != 2)
                        return -EBADMSG;
                r = rd_bytes(&in, &b);
                if (r < 0)
                        return r;
                if (f->kind != PB_REPEATED && f->kind != PB_MAP) {
                        if (seen & (1ull << i))
                                return -EBADMSG;
                        seen |= 1ull << i;
                }
                struct json_value *x;
                switch (f->kind) {
                case PB_VAULT_REF:
                case PB_STRING:
                        if (f->kind == PB_VAULT_REF && !vault_ref(&b))
                                break;
                        r = added(json_add_stringn(d, obj, f->key, (const char *) b.p,
                                                   (size_t) (b.end - b.p)));
                        break;
                case PB_MESSAGE:
                        r = added(json_add_object(d, obj, f->key, &x));
                        if (r >= 0)
                                r = decode(d, x, f->msg, b);
                        break;
                case PB_EMBED:
                        r = decode(d, obj, f->msg, b);
                        break;
                case PB_REPEATED:
                        if (!lists[i])
                                r = added(json_add_array(d, obj, f->key, &lists[i]));
                        if (r >= 0)
                                r = added(json_add_object(d, lists[i], NULL, &x));
                        if (r >= 0)
                                r = decode(d, x, f->msg, b);
                        break;
                case PB_MAP:
                        if (!lists[i])
                                r = added(json_add_object(d, obj, f->key, &lists[i]));
                        if (r >= 0)
                                r = map_entry(d, lists[i], b);
                        break;
                case PB_INT32:
                        break;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* runtime.Unknown: the list's kind (typeMeta.kind) and its bytes (raw). */
static int unknown(struct rd in, const char *kind, struct rd *ret_raw) {
        bool has_raw = false, kind_ok = false;
        while (in.p < in.end) {
                uint64_t tag;
                struct rd b;
                int r = rd_varint(&in, &tag);
                if (r < 0)
                        return r;
                unsigned field = (unsigned) (tag >> 3), wire = (unsigned) (tag & 7);
                if (field < 1 || field > 4) {
                        r = rd_skip(&in, wire);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (wire != 2 || rd_bytes(&in, &b) < 0)
                        return -EBADMSG;
                if (field == 1) {
                        while (b.p < b.end) {
                                struct rd s;
                                if (rd_varint(&b, &tag) < 0)
                                        return -EBADMSG;
                                if ((tag >> 3) == 2 && (tag & 7) == 2) {
                                        if (rd_bytes(&b, &s) < 0)
                                                return -EBADMSG;
                                        kind_ok = (size_t) (s.end - s.p) == strlen(kind) &&
                                                  memcmp(s.p, kind, strlen(kind)) == 0;
                                } else if (rd_skip(&b, (unsigned) (tag & 7)) < 0)
                                        return -EBADMSG;
                        }
                } else if (field == 2) {
                        if (has_raw)
                                return -EBADMSG;
                        has_raw = true;
                        *ret_raw = b;
                } else if (b.p != b.end)
                        return -EBADMSG; /* a content encoding or type: not a plain list */
        }
        return has_raw && kind_ok ? 0 : -EBADMSG;
}

int discover_pb_list(const void *list, size_t len, enum plan_kind k, struct json_doc **ret) {
        static const char *const kinds[_PLAN_KIND_MAX] = {
                [PLAN_DEPLOYMENT] = "DeploymentList",
                [PLAN_STATEFULSET] = "StatefulSetList",
                [PLAN_DAEMONSET] = "DaemonSetList",
        };
        _cleanup_json_doc_ struct json_doc *d = NULL;
        struct rd in = {list, (const uint8_t *) list + len}, raw;
        if (!list || (unsigned) k >= _PLAN_KIND_MAX || !ret)
                return -EINVAL;
        if (len < 4 || memcmp(list, "k8s\0", 4) != 0)
                return -EBADMSG;
        in.p += 4;
        int r = unknown(in, kinds[k], &raw);
        if (r < 0)
                return r;
        size_t max = len > (64u << 20) / 64u - 1024u ? 64u << 20 : 64u * len + 65536u;
        r = json_doc_new(JSON_SECURE, max, &d);
        if (r >= 0)
                r = decode(d, json_doc_root(d),
                           k == PLAN_DAEMONSET ? &daemon_list : &replicated_list, raw);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(d);
        return 0;
}
