# common/: the shared modules (one prefixed .c/.h pair each, or a folder: common/tls/), archived
# twice: once for the released musl binaries and once for the ASan/UBSan test build.
# A module with alternative backends names them <module>-<backend>.c; COMMON_EXCLUDE lists the
# backends that are not linked into libcommon.a (tests pick them explicitly).

COMMON_EXCLUDE := $(TOP)/common/sandbox-null.c
COMMON_SRCS := $(filter-out $(COMMON_EXCLUDE),$(wildcard $(TOP)/common/*.c $(TOP)/common/*/*.c))
COMMON_HDRS := $(wildcard $(TOP)/common/*.h $(TOP)/common/*/*.h)

$(O)/musl/libcommon.a: $(patsubst $(TOP)/%.c,$(O)/musl/%.o,$(COMMON_SRCS))
	@rm -f $@ && ar rcs $@ $^

$(O)/asan/libcommon.a: $(patsubst $(TOP)/%.c,$(O)/asan/%.o,$(COMMON_SRCS))
	@rm -f $@ && ar rcs $@ $^

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
