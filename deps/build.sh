#!/usr/bin/env bash
# Builds cloudtaser's third-party dependencies from Debian bookworm source packages, with Debian's
# patches applied, as static libraries with a minimal feature set, into a cache outside the tree.
#
#   deps/build.sh <flavour> <prefix>
#
# flavour: musl  -> static libraries for the released binaries (musl-gcc, static-pie ready)
#          glibc -> the same libraries built with the system gcc, for ASan/UBSan tests and fuzzers
#
# Sources come from `apt-get source <pkg>=<version>`, downloaded once into <cache>/src and unpacked
# per build. Nothing of the dependencies' code is ever copied into the repo. The versions are the
# pins of deps/versions as deps/resolve.sh resolves them against the archive today; make passes the
# list it keyed the cache on in DEPS_RESOLVED, and the build stops if apt now answers differently.
set -euo pipefail

flavour=${1:?usage: build.sh musl|glibc PREFIX}
prefix=${2:?usage: build.sh musl|glibc PREFIX}
here=$(cd "$(dirname "$0")" && pwd)
# Downloaded source packages are shared by every cache key (they are named by version).
srcdir="$(dirname "$(dirname "$prefix")")/src"
jobs=$(nproc 2>/dev/null || echo 2)

log() { printf '[deps:%s] %s\n' "$flavour" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- versions ---------------------------------------------------------------------------------
# resolve.sh prints its warnings on stderr: frame them so they stand out in the build log.
resolve_err=$(mktemp)
resolve_rc=0
resolved=$("$here/resolve.sh" "${DEPS_VERSIONS:-$here/versions}" 2> "$resolve_err") || resolve_rc=$?
if [ -s "$resolve_err" ]; then
    bar='!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'
    { echo "$bar"; sed 's/^/!! /' "$resolve_err"; echo "$bar"; } >&2
fi
rm -f "$resolve_err"
[ "$resolve_rc" -eq 0 ] || die "deps/resolve.sh could not resolve every pin (see above)"
resolved=$(echo $resolved)
if [ -n "${DEPS_RESOLVED:-}" ] && [ "$(echo $DEPS_RESOLVED)" != "$resolved" ]; then
    die "apt now resolves the pins to '$resolved', not to '$DEPS_RESOLVED' the cache key was computed from (apt's index changed during this make): run make again"
fi
version_of() { awk -v p="$1" '{ for (i = 1; i < NF; i += 2) if ($i == p) print $(i + 1) }' <<< "$resolved"; }

# --- toolchain --------------------------------------------------------------------------------
multiarch=$(gcc -print-multiarch)
case "$flavour" in
musl)
    tc="$prefix/toolchain"
    mkdir -p "$tc/kinclude"
    # musl-gcc only searches musl's headers; libseccomp, libcap and our sandbox need the kernel's
    # UAPI headers, so expose exactly those three trees.
    ln -sfn /usr/include/linux "$tc/kinclude/linux"
    ln -sfn "/usr/include/$multiarch/asm" "$tc/kinclude/asm"
    ln -sfn /usr/include/asm-generic "$tc/kinclude/asm-generic"
    # Debian's musl-gcc.specs cannot link -static-pie (it always uses Scrt1.o and asks for the
    # dynamic loader); derive a specs file that uses rcrt1.o and --no-dynamic-linker for it.
    muslspecs="/usr/lib/$(echo "$multiarch" | sed 's/-gnu$/-musl/')/musl-gcc.specs"
    [ -f "$muslspecs" ] || die "musl-gcc specs not found at $muslspecs (install musl-tools)"
    musllib=$(dirname "$muslspecs")
    sed -e "s#^%{!shared: $musllib/Scrt1.o}#%{static-pie: $musllib/rcrt1.o; !shared: $musllib/Scrt1.o}#" \
        -e "s#^-dynamic-linker \\([^ ]*\\) -nostdlib %{shared:-shared} %{static:-static}#-nostdlib %{shared:-shared} %{static-pie:-static -pie --no-dynamic-linker -z text; static:-static; !shared:-dynamic-linker \\1}#" \
        "$muslspecs" > "$tc/musl-static-pie.specs"
    grep -q 'rcrt1.o' "$tc/musl-static-pie.specs" || die "could not derive a static-pie specs file from $muslspecs"
    # The wrapper finds its files relative to itself: the prefix is renamed once complete.
    cat > "$tc/cc" <<'EOF'
#!/bin/sh
d=$(dirname "$(readlink -f "$0")")
exec gcc -specs "$d/musl-static-pie.specs" -isystem "$d/kinclude" "$@"
EOF
    chmod +x "$tc/cc"
    CC="$tc/cc"
    # No unwind tables: nothing in a static C program unwinds (.eh_frame was 85 KiB of the wrapper).
    CFLAGS="-Os -fPIE -fstack-protector-strong -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables"
    host="--host=$(echo "$multiarch" | sed 's/-gnu$/-musl/')"
    ;;
glibc)
    CC=gcc
    CFLAGS="-O1 -g -fPIC"
    host=""
    ;;
*) die "unknown flavour '$flavour'" ;;
esac
export CC CFLAGS

# --- sources ----------------------------------------------------------------------------------
# Unpack a pinned Debian source package (patches applied by dpkg-source) into a fresh build dir.
fetch() {
    local pkg=$1 ver upver dsc
    ver=$(version_of "$pkg")
    [ -n "$ver" ] || die "no version for $pkg in deps/versions"
    upver=${ver#*:}
    dsc="$srcdir/${pkg}_${upver}.dsc"
    mkdir -p "$srcdir"
    # One download at a time into the shared source directory (both flavours may build at once).
    if [ ! -f "$dsc" ]; then
        (
            flock 9
            if [ ! -f "$dsc" ]; then
                log "downloading $pkg $ver (apt-get source)"
                (cd "$srcdir" && apt-get source --download-only "$pkg=$ver" >/dev/null) ||
                    die "apt-get source $pkg=$ver failed: is there a deb-src line for bookworm in the apt sources? (make setup adds it)"
            fi
        ) 9> "$srcdir/.download-lock" || exit 1
    fi
    local bdir="$prefix/build/$pkg"
    rm -rf "$bdir"
    mkdir -p "$prefix/build"
    dpkg-source --no-check -x "$dsc" "$bdir" >/dev/null || die "dpkg-source -x $dsc failed"
    echo "$bdir"
}

mkdir -p "$prefix/lib" "$prefix/include"

# --- wolfSSL ----------------------------------------------------------------------------------
build_wolfssl() {
    local d; d=$(fetch wolfssl)
    log "building wolfSSL"
    cd "$d"
    # Debian's orig tarball ships no configure script. curl's wolfSSL backend uses the OpenSSL
    # compatibility names (SSL_write, SSL_CTX...): it also needs SSL_CTX_set1_curves_list, which only the full layer has.
    ./autogen.sh >/dev/null 2>&1 || die "wolfSSL autogen.sh failed"
    # x86_64: AES-NI for the AES-GCM record encryption (wolfSSL checks the CPU at run time).
    # Without it GHASH and AES in C were a quarter of the webhook's CPU time.
    # P-256 (every ECDHE key share, and the ECDSA signatures of our and most public chains) runs
    # on wolfSSL's dedicated single-precision code, for that one curve only (--enable-sp=smallec256;
    # its x86_64 assembly, with BMI2/ADX picked at run time): generic big-number P-256 was 93 % of
    # the wrapper's start-up (docs/benchmarks.md). Everything else (RSA, P-384) stays on the
    # generic sp-math-all code. Enabling every size (--enable-sp --enable-sp-asm) tripled the
    # binaries with the RSA/P-384/P-521 code and tables.
    # WOLFSSL_SP_SMALL (the "small" of smallec256) replaces the 150 KiB table of precomputed
    # multiples of the base point by a 4 KiB one. The assembly file is one section that
    # --gc-sections keeps whole, and it has the RSA-2048/3072 code unless told otherwise:
    # WOLFSSL_SP_NO_2048/3072 (RSA uses the generic code, which the build keeps anyway).
    # WOLFSSL_GETRANDOM: the DRBG seeds from the getrandom() system call instead of opening
    # /dev/urandom, so a sandboxed process (the operator's CA signer: no open() in its seccomp
    # allow-list, no /dev in its view) can still sign.
    local cpu_opts="--enable-sp=smallec256" sp_defs="-DWOLFSSL_SP_NO_2048 -DWOLFSSL_SP_NO_3072 -DWOLFSSL_GETRANDOM"
    case "$multiarch" in
    x86_64-*) cpu_opts="$cpu_opts --enable-sp-asm --enable-aesni" ;;
    esac
    ./configure $host --prefix="$prefix" --enable-static --disable-shared \
        --disable-examples --disable-crypttests --disable-benchmark --disable-dependency-tracking \
        $cpu_opts \
        --enable-tls13 --enable-tlsv12 --disable-oldtls --disable-tlsv10 --disable-sslv3 \
        --enable-ecc --enable-rsa --enable-rsapss --enable-aesgcm --enable-chacha --enable-poly1305 \
        --enable-sha384 --enable-sha512 --enable-hkdf --enable-supportedcurves \
        --enable-sni --enable-alpn --enable-secure-renegotiation-info --enable-extended-master \
        --enable-certgen --enable-certreq --enable-certext --enable-keygen --enable-altcertchains \
        --enable-ip-alt-name --enable-base64encode --enable-errorstrings \
        --enable-opensslextra \
        --disable-dsa --disable-dh --disable-md5 --disable-des3 --disable-arc4 \
        --disable-psk --disable-dtls --disable-sys-ca-certs \
        CFLAGS="$CFLAGS -DWOLFSSL_PUBLIC_MP $sp_defs" >config.out 2>&1 || { tail -30 config.out; die "wolfSSL configure failed"; }
    make -j"$jobs" >make.out 2>&1 || { tail -40 make.out; die "wolfSSL build failed"; }
    make install >/dev/null 2>&1 || die "wolfSSL install failed"
    # configure detects __uint128_t into its private config.h only, and deliberately leaves
    # HAVE___UINT128_T out of the installed options.h; code built against the installed headers
    # would then size big-number digits, ecc_key and RsaKey differently from the library (an ABI
    # mismatch ASan caught in common/tls.c). Record what the library was built with.
    if grep -q '^#define HAVE___UINT128_T 1' config.h; then
        printf '\n/* added by cloudtaser deps/build.sh: the library was built with it */\n#ifndef HAVE___UINT128_T\n#define HAVE___UINT128_T 1\n#endif\n' \
            >> "$prefix/include/wolfssl/options.h"
    fi
}

# --- curl -------------------------------------------------------------------------------------
build_curl() {
    local d; d=$(fetch curl)
    log "building libcurl"
    cd "$d"
    # --disable-crypto-auth is not given: it would also remove AWS SigV4 signing
    # (CURLOPT_AWS_SIGV4, for the operator's ECR credentials; curl 7.88 guards it with
    # CURL_DISABLE_CRYPTO_AUTH, and its --disable-aws switch does not exist yet). Digest auth comes
    # with it but is never enabled: common/http sets no CURLOPT_HTTPAUTH besides SigV4.
    # Debian builds its OpenSSL flavour with every patch but the last two (GnuTLS, NSS renames);
    # do the same, then regenerate the build system as Debian's rules do (./buildconf).
    patch -R -p1 -s < debian/patches/99_nss.patch || die "could not revert 99_nss.patch"
    patch -R -p1 -s < debian/patches/90_gnutls.patch || die "could not revert 90_gnutls.patch"
    autoreconf -fi >/dev/null 2>&1 || die "curl autoreconf failed"
    ./configure $host --prefix="$prefix" --enable-static --disable-shared --disable-dependency-tracking \
        --with-wolfssl="$prefix" --without-zlib --without-brotli --without-zstd --without-libidn2 \
        --without-libpsl --without-nghttp2 --without-nghttp3 --without-ngtcp2 --without-libssh2 \
        --without-libssh --without-librtmp --without-libgsasl --without-gssapi --without-hyper \
        --without-ca-bundle --without-ca-path --without-ca-fallback \
        --disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp --disable-dict \
        --disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp \
        --disable-gopher --disable-mqtt --disable-cookies --disable-manual --disable-ntlm \
        --disable-ntlm-wb --disable-kerberos-auth --disable-negotiate-auth --disable-aws \
        --disable-alt-svc --disable-hsts --disable-netrc --disable-doh --disable-mime \
        --disable-verbose --enable-ipv6 --enable-threaded-resolver \
        --disable-docs --disable-versioned-symbols \
        LIBS="-lpthread" >config.out 2>&1 || { tail -30 config.out; die "curl configure failed"; }
    grep -qi 'SSL:.*enabled (wolfSSL)' config.out || { grep -i ssl config.out | tail; die "curl was not configured with wolfSSL"; }
    make -j"$jobs" -C lib >make.out 2>&1 || { tail -40 make.out; die "libcurl build failed"; }
    make -C lib install >/dev/null 2>&1 && make -C include install >/dev/null 2>&1 || die "libcurl install failed"
}

# --- cJSON ------------------------------------------------------------------------------------
build_cjson() {
    local d; d=$(fetch cjson)
    log "building cJSON"
    cd "$d"
    $CC $CFLAGS -std=c89 -c cJSON.c -o cJSON.o || die "cJSON build failed"
    ar rcs "$prefix/lib/libcjson.a" cJSON.o
    mkdir -p "$prefix/include/cjson"
    cp cJSON.h "$prefix/include/cjson/cJSON.h"
}

# --- libseccomp -------------------------------------------------------------------------------
build_libseccomp() {
    local d; d=$(fetch libseccomp)
    log "building libseccomp"
    cd "$d"
    ./configure $host --prefix="$prefix" --enable-static --disable-shared --disable-python \
        --disable-dependency-tracking >config.out 2>&1 || { tail -30 config.out; die "libseccomp configure failed"; }
    make -j"$jobs" -C src >make.out 2>&1 || { tail -40 make.out; die "libseccomp build failed"; }
    make -C src install >/dev/null 2>&1 && make -C include install >/dev/null 2>&1 || die "libseccomp install failed"
}

# --- libcap -----------------------------------------------------------------------------------
build_libcap2() {
    local d; d=$(fetch libcap2)
    log "building libcap"
    cd "$d"
    make -C libcap -j"$jobs" CC="$CC" BUILD_CC=gcc CFLAGS="$CFLAGS" COPTS="$CFLAGS" \
        SHARED=no GOLANG=no PAM_CAP=no LIBATTR=no libcap.a >make.out 2>&1 ||
        { tail -40 make.out; die "libcap build failed"; }
    cp libcap/libcap.a "$prefix/lib/libcap.a"
    mkdir -p "$prefix/include/sys"
    cp libcap/include/sys/capability.h "$prefix/include/sys/capability.h"
}

# --- libyaml ----------------------------------------------------------------------------------
build_libyaml() {
    local d; d=$(fetch libyaml)
    log "building libyaml"
    cd "$d"
    [ -x configure ] || autoreconf -fi >/dev/null 2>&1 || die "libyaml autoreconf failed"
    ./configure $host --prefix="$prefix" --enable-static --disable-shared \
        --disable-dependency-tracking >config.out 2>&1 || { tail -30 config.out; die "libyaml configure failed"; }
    make -j"$jobs" -C src >make.out 2>&1 || { tail -40 make.out; die "libyaml build failed"; }
    make -C src install >/dev/null 2>&1 && make -C include install >/dev/null 2>&1 || die "libyaml install failed"
}

# --- http-parser ------------------------------------------------------------------------------
# The HTTP/1.x request parser of common/httpd (Node's parser before llhttp). One source file; built
# strict (HTTP_PARSER_STRICT=1, the default: no tolerance for bare LF in the request line, spaces
# in header names...). Debian's llhttp is generated from TypeScript at build time, see
# docs/development.md.
build_http_parser() {
    local d; d=$(fetch http-parser)
    log "building http-parser"
    cd "$d"
    $CC $CFLAGS -std=c99 -DHTTP_PARSER_STRICT=1 -c http_parser.c -o http_parser.o || die "http-parser build failed"
    ar rcs "$prefix/lib/libhttp_parser.a" http_parser.o
    cp http_parser.h "$prefix/include/http_parser.h"
}

t0=$(date +%s)
for pkg in wolfssl curl cjson libseccomp libcap2 libyaml http_parser; do
    ( "build_$pkg" )
done
rm -rf "$prefix/build" "$prefix/share" "$prefix/bin" "$prefix/lib/pkgconfig" "$prefix"/lib/*.la
# What this prefix was built from, for whoever inspects the cache.
printf '%s %s\n' $resolved > "$prefix/versions"
log "done in $(( $(date +%s) - t0 ))s: $(ls "$prefix/lib" | tr '\n' ' ')"
