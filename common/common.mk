# common/: the shared modules (one prefixed .c/.h pair each, or a folder: common/tls/), archived
# twice: once for the released musl binaries and once for the ASan/UBSan test build.
# A module with alternative backends names them <module>-<backend>.c; COMMON_EXCLUDE lists the
# backends that are not linked into libcommon.a (tests pick them explicitly).

COMMON_EXCLUDE := $(TOP)/common/sandbox-null.c $(TOP)/common/sandbox-gen.c
COMMON_SRCS := $(filter-out $(COMMON_EXCLUDE),$(wildcard $(TOP)/common/*.c $(TOP)/common/*/*.c))
COMMON_HDRS := $(wildcard $(TOP)/common/*.h $(TOP)/common/*/*.h)

$(O)/musl/libcommon.a: $(patsubst $(TOP)/%.c,$(O)/musl/%.o,$(COMMON_SRCS))
	@rm -f $@ && ar rcs $@ $^

$(O)/asan/libcommon.a: $(patsubst $(TOP)/%.c,$(O)/asan/%.o,$(COMMON_SRCS))
	@rm -f $@ && ar rcs $@ $^

# The seccomp programs of common/sandbox-rules.h, made at build time: sandbox-gen (linked with
# libseccomp, built with the compiler and flags of the build it serves, so the rules' #ifdefs and
# the architecture are that build's) writes them as a C table, $(O)/<build>/gen/sandbox-filters.h,
# which common/sandbox-seccomp.c includes and loads. No binary links libseccomp; test-sandbox
# checks the table against what libseccomp makes of the same rules. The fuzz build uses the
# table of the asan build (same compiler and macros).
SANDBOX_GEN_SRCS := $(TOP)/common/sandbox-gen.c $(TOP)/common/sandbox-build.c
SANDBOX_GEN_HDRS := $(TOP)/common/sandbox-rules.h $(TOP)/common/sandbox-build.h $(TOP)/common/sandbox.h
MUSL_CFLAGS += -I$(O)/musl/gen
ASAN_CFLAGS += -I$(O)/asan/gen

$(O)/musl/gen/sandbox-gen: $(SANDBOX_GEN_SRCS) $(SANDBOX_GEN_HDRS) $(DEPS_MUSL_STAMP)
	@mkdir -p $(@D)
	@echo "  GEN-CC  $@"
	@$(MUSL_CC) $(MUSL_CFLAGS) $(SANDBOX_GEN_SRCS) $(MUSL_LDFLAGS) $(LIB_SANDBOX) -o $@
$(O)/asan/gen/sandbox-gen: $(SANDBOX_GEN_SRCS) $(SANDBOX_GEN_HDRS) $(DEPS_GLIBC_STAMP)
	@mkdir -p $(@D)
	@echo "  GEN-CC  $@"
	@$(ASAN_CC) $(ASAN_CFLAGS) $(SANDBOX_GEN_SRCS) $(ASAN_LDFLAGS) $(LIB_SANDBOX) -o $@
$(O)/plain/gen/sandbox-gen: $(SANDBOX_GEN_SRCS) $(SANDBOX_GEN_HDRS) $(DEPS_GLIBC_STAMP)
	@mkdir -p $(@D)
	@echo "  GEN-CC  $@"
	@gcc $(COMMON_CFLAGS) -O1 -isystem $(DEPS_GLIBC)/include $(SANDBOX_GEN_SRCS) \
		-L$(DEPS_GLIBC)/lib $(LIB_SANDBOX) -o $@
$(O)/%/gen/sandbox-filters.h: $(O)/%/gen/sandbox-gen
	@echo "  GEN     $@"
	@ASAN_OPTIONS=detect_leaks=0 $< $@

$(O)/musl/common/sandbox-seccomp.o: $(O)/musl/gen/sandbox-filters.h
$(O)/asan/common/sandbox-seccomp.o: $(O)/asan/gen/sandbox-filters.h
$(O)/fuzz/common/sandbox-seccomp.o: $(O)/asan/gen/sandbox-filters.h

# Generic compile rules for both builds (dependency files via -MMD).
$(O)/musl/%.o: $(TOP)/%.c $(DEPS_MUSL_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      $*.c"
	@$(MUSL_CC) $(MUSL_CFLAGS) -MMD -MP -c $< -o $@

$(O)/asan/%.o: $(TOP)/%.c $(DEPS_GLIBC_STAMP)
	@mkdir -p $(@D)
	@echo "  CC-ASAN $*.c"
	@$(ASAN_CC) $(ASAN_CFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(O) -name '*.d' 2>/dev/null)
