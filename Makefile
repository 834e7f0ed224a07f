# cloudtaser: non-recursive GNU make. Each folder contributes one fragment (<folder>/<folder>.mk).
#
#   make          build everything (installs what is missing first, see `make setup`)
#   make check    lint, unit tests (musl and ASan+UBSan builds), fuzz corpora, end-to-end tests
#   make demo     build and run the end-to-end demonstration against the stand-in vault
#   make fuzz     run the libFuzzer targets for FUZZ_SECONDS each
#   make bench    print measured figures
#
# Two builds of the same sources:
#   build/musl/   released code: static-pie musl binaries, hardened, -Werror
#   build/asan/   clang + glibc + ASan/UBSan, for tests and fuzzers (sanitizers do not work with musl)

.DEFAULT_GOAL := all
SHELL := /bin/bash
.SUFFIXES:
.DELETE_ON_ERROR:
.SECONDARY:
MAKEFLAGS += --no-builtin-rules

TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
O := $(TOP)/build
VERSION := $(shell git -C $(TOP) describe --always --dirty 2>/dev/null || echo 0.0.0)

include deps/deps.mk

# --- compilers and flags -------------------------------------------------------------------------
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wformat-security -Wmissing-prototypes \
            -Wstrict-prototypes -Wno-unused-parameter -Wimplicit-fallthrough -Wvla -Wundef
COMMON_CFLAGS := -std=gnu11 -D_GNU_SOURCE -I$(TOP) $(WARNINGS) -DCLOUDTASER_VERSION='"$(VERSION)"'

# Released (musl) build: static-pie, full RELRO, stack protector, FORTIFY, stripped at install.
MUSL_CC := $(DEPS_MUSL)/toolchain/cc
MUSL_CFLAGS := $(COMMON_CFLAGS) -Os -g -fPIE -fstack-protector-strong -fstack-clash-protection \
               -D_FORTIFY_SOURCE=2 -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables \
               -isystem $(DEPS_MUSL)/include
MUSL_LDFLAGS := -static-pie -Wl,-z,relro,-z,now,-z,noexecstack,--gc-sections -L$(DEPS_MUSL)/lib

# Sanitizer (glibc) build.
ASAN_CC := clang-14
ASAN_CFLAGS := $(COMMON_CFLAGS) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=all -isystem $(DEPS_GLIBC)/include -DCLOUDTASER_ASAN=1
ASAN_LDFLAGS := -fsanitize=address,undefined -L$(DEPS_GLIBC)/lib

# Third-party libraries, each named after the one common/ module that wraps it, in link order
# (users before what they use: libcurl calls wolfSSL).
LIB_HTTPD := -lhttp_parser
LIB_HTTP := -lcurl
LIB_TLS := -lwolfssl
LIB_JSON := -lcjson
LIB_SANDBOX := -lseccomp
LIB_CAPS := -lcap
LIB_YAML := -lyaml
LIB_SYS := -lpthread -lm
# Tests, fuzz targets and test tools may link any module of common/: all of them.
DEP_LIBS := $(LIB_HTTPD) $(LIB_HTTP) $(LIB_TLS) $(LIB_YAML) $(LIB_JSON) $(LIB_SANDBOX) $(LIB_CAPS) $(LIB_SYS)
# Each program links the libraries of the modules it uses, and no other (static archives would
# drop unused code anyway, but the link line then says what a binary contains). The fragments'
# link rules use $(DEP_LIBS); these target-specific values narrow it per program.
# The sandbox module needs libseccomp only at build time (common/common.mk): no program links it.
WRAPPER_DEP_LIBS := $(LIB_HTTPD) $(LIB_HTTP) $(LIB_TLS) $(LIB_JSON) $(LIB_CAPS) $(LIB_SYS)
INIT_DEP_LIBS :=
OPERATOR_DEP_LIBS := $(LIB_HTTPD) $(LIB_HTTP) $(LIB_TLS) $(LIB_YAML) $(LIB_JSON) $(LIB_CAPS) $(LIB_SYS)
$(foreach b,musl asan,$(O)/$(b)/bin/cloudtaser-wrapper): DEP_LIBS := $(WRAPPER_DEP_LIBS)
$(foreach b,musl asan,$(O)/$(b)/bin/cloudtaser-init): DEP_LIBS := $(INIT_DEP_LIBS)
$(foreach b,musl asan plain,$(O)/$(b)/bin/cloudtaser-operator): DEP_LIBS := $(OPERATOR_DEP_LIBS)
CLI_DEP_LIBS := $(LIB_HTTP) $(LIB_TLS) $(LIB_YAML) $(LIB_JSON) $(LIB_SYS)
$(foreach b,musl asan,$(O)/$(b)/bin/cloudtaser): DEP_LIBS := $(CLI_DEP_LIBS)
BROKER_DEP_LIBS := $(LIB_HTTPD) $(LIB_HTTP) $(LIB_TLS) $(LIB_YAML) $(LIB_JSON) $(LIB_SYS)
$(foreach b,musl asan,$(O)/$(b)/bin/cloudtaser-broker): DEP_LIBS := $(BROKER_DEP_LIBS)

# --- fragments -----------------------------------------------------------------------------------
include common/common.mk
include tests/tests.mk
include wrapper/wrapper.mk
# Fragments of folders that land later (optional until they exist).
-include init/init.mk
-include images/images.mk
-include operator/operator.mk
-include cli/cli.mk
-include broker/broker.mk
# The plain operator compiles every common/ source itself (common/sandbox-build.c too, which the
# archives leave out of programs): its table of seccomp programs, and libseccomp for that file.
$(O)/plain/bin/cloudtaser-operator: $(O)/plain/gen/sandbox-filters.h
$(O)/plain/bin/cloudtaser-operator: COMMON_CFLAGS += -I$(O)/plain/gen
$(O)/plain/bin/cloudtaser-operator: DEP_LIBS += $(LIB_SANDBOX)

# --- top-level targets ---------------------------------------------------------------------------
.PHONY: all setup deps servers check demo bench clean print-deps-musl

# The dependency stamps are named here so that they are never taken for intermediate files
# (.SECONDARY would let a missing stamp, i.e. a new cache key, go unbuilt while the objects
# look up to date): a new key builds the libraries, and its newer stamp recompiles everything.
all: $(DEPS_MUSL_STAMP) $(RELEASE_BINS)
tests: $(DEPS_MUSL_STAMP) $(DEPS_GLIBC_STAMP)

setup:
	@$(TOP)/deps/setup.sh

# The real servers (OpenBao, etcd, Kubernetes) from their pinned Go modules, built once into the
# cache (tests/servers/build.sh; the first build takes a while, see README).
servers:
	@$(TOP)/tests/servers/build.sh openbao etcd kube

check: all tests servers
	@$(TOP)/tests/run-all.sh

demo: all tests servers
	@$(TOP)/tests/demo.sh

bench: all tests servers
	@$(TOP)/tests/servers/build.sh peers
	@$(TOP)/tests/bench.sh
	@$(TOP)/tests/bench-wrapper.sh
	@$(TOP)/tests/bench-peers.sh
	@$(TOP)/tests/bench-operator.sh
	@$(TOP)/tests/bench-broker.sh
	@$(MAKE) --no-print-directory $(O)/plain/bin/cloudtaser-operator
	@$(TOP)/tests/bench-operator-valgrind.sh
	@$(TOP)/tests/bench-cli-discover.sh

print-deps-musl:
	@echo $(DEPS_MUSL)

clean:
	rm -rf $(O)

# `make build/asan/tests/unit/test-buf` works too (the rules are written with absolute paths).
build/%: $(O)/% ;
