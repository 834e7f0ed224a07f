#!/usr/bin/env bash
# Lint, as TAP: source rules (tests/lint.pl) and clang-format (.clang-format).
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
mapfile -t files < <(find common wrapper init operator broker cli tests -name '*.[ch]' \
    -not -path '*/corpus/*' 2>/dev/null | sort)
n=0
check() {
    local name=$1; shift
    n=$((n + 1))
    if out=$("$@" 2>&1); then
        echo "ok $n - $name (${#files[@]} files)"
    else
        echo "not ok $n - $name"
        printf '%s\n' "$out" | head -50 | sed 's/^/# /'
    fi
}
check "source rules: banned functions, O_CLOEXEC, module boundaries" perl tests/lint.pl "${files[@]}"
check "clang-format" clang-format --dry-run --Werror "${files[@]}"
# The rules themselves must catch what they claim to: a file with one violation of each kind.
n=$((n + 1))
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/common" "$tmp/operator"
cat > "$tmp/common/bad.c" <<'C'
#include <curl/curl.h>
#include "common/json.h"
#include "wrapper/config.h"
int f(const char *s, char *b) {
        int fd = open(s, O_RDONLY);
        sprintf(b, "%d", atoi(s));
        fprintf(stderr, "x");
        return strtol(s, NULL, 10) + fd;
}
C
# A module that is a folder: its .c files and its private wolf.h may include the library, its
# public headers may not. A program folder includes only common/ and itself.
mkdir -p "$tmp/common/tls"
echo '#include <wolfssl/ssl.h>' > "$tmp/common/tls/key.c"
echo '#include <wolfssl/ssl.h>' > "$tmp/common/tls/wolf.h"
echo '#include <wolfssl/ssl.h>' > "$tmp/common/tls/cert.h"
cat > "$tmp/operator/bad.c" <<'C'
#include "common/injection.h"
#include "operator/admission.h"
#include "wrapper/config.h"
C
got=$(cd "$tmp" && perl "$top/tests/lint.pl" common/bad.c common/tls/key.c common/tls/wolf.h common/tls/cert.h operator/bad.c | grep -v "^lint:" | sed 's/^[^:]*:[0-9]*: \([a-z-]*\):.*/\1/' | sort | tr '\n' ' ')
want="banned-function banned-function common-logs module-boundary module-boundary no-cloexec third-party-include third-party-include unchecked-strtol "
if [ "$got" = "$want" ]; then echo "ok $n - lint rules catch a planted violation of each kind"
else echo "not ok $n - lint rules: got '$got', want '$want'"; fi
echo "1..$n"
