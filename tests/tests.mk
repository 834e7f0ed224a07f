# tests/: one unit-test executable per common module (tests/unit/test-<module>.c, TAP output),
# fuzz targets (tests/fuzz/fuzz-<name>.c with corpus tests/fuzz/corpus/<name>/), helper code
# shared by tests (tests/lib/*.c), small tools used by the end-to-end tests and the demo
# (tests/tools/*.c), and the stand-in servers (tests/standin/).

UNIT_SRCS := $(wildcard $(TOP)/tests/unit/test-*.c)
UNIT_NAMES := $(patsubst $(TOP)/tests/unit/%.c,%,$(UNIT_SRCS))
TESTLIB_SRCS := $(wildcard $(TOP)/tests/lib/*.c)
FUZZ_SRCS := $(wildcard $(TOP)/tests/fuzz/fuzz-*.c)
FUZZ_NAMES := $(patsubst $(TOP)/tests/fuzz/fuzz-%.c,%,$(FUZZ_SRCS))
TOOL_SRCS := $(wildcard $(TOP)/tests/tools/*.c)
TOOL_NAMES := $(patsubst $(TOP)/tests/tools/%.c,%,$(TOOL_SRCS))

UNIT_MUSL := $(addprefix $(O)/musl/tests/unit/,$(UNIT_NAMES))
UNIT_ASAN := $(addprefix $(O)/asan/tests/unit/,$(UNIT_NAMES))
FUZZ_REPLAY := $(addprefix $(O)/asan/tests/fuzz/replay-,$(FUZZ_NAMES))
FUZZ_LIBFUZZER := $(addprefix $(O)/fuzz/fuzz-,$(FUZZ_NAMES))
TOOLS_MUSL := $(addprefix $(O)/musl/bin/,$(TOOL_NAMES))
TOOLS_ASAN := $(addprefix $(O)/asan/bin/,$(TOOL_NAMES))

$(O)/musl/libtestlib.a: $(patsubst $(TOP)/%.c,$(O)/musl/%.o,$(TESTLIB_SRCS))
	@rm -f $@ && ar rcs $@ $^
$(O)/asan/libtestlib.a: $(patsubst $(TOP)/%.c,$(O)/asan/%.o,$(TESTLIB_SRCS))
	@rm -f $@ && ar rcs $@ $^

$(O)/musl/tests/unit/%: $(O)/musl/tests/unit/%.o $(O)/musl/libtestlib.a $(O)/musl/libcommon.a
	@echo "  LD      $@"
	@$(MUSL_CC) $(MUSL_LDFLAGS) -Wl,--start-group $^ -Wl,--end-group $(DEP_LIBS) -o $@

$(O)/asan/tests/unit/%: $(O)/asan/tests/unit/%.o $(O)/asan/libtestlib.a $(O)/asan/libcommon.a
	@echo "  LD-ASAN $@"
	@$(ASAN_CC) $(ASAN_LDFLAGS) -Wl,--start-group $^ -Wl,--end-group $(DEP_LIBS) -o $@

# Tools: static musl binaries built exactly like released binaries (stripped copy in bin/).
$(O)/musl/bin/%: $(O)/musl/tests/tools/%.o $(O)/musl/libcommon.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(MUSL_CC) $(MUSL_LDFLAGS) $^ $(DEP_LIBS) -o $@.debug
	@strip --strip-all -o $@ $@.debug

$(O)/asan/bin/%: $(O)/asan/tests/tools/%.o $(O)/asan/libcommon.a
	@mkdir -p $(@D)
	@$(ASAN_CC) $(ASAN_LDFLAGS) -Wl,--start-group $^ -Wl,--end-group $(DEP_LIBS) -o $@

# Fuzz targets replayed over their corpus through a plain main() (tests/fuzz/replay.c).
$(O)/asan/tests/fuzz/replay-%: $(O)/asan/tests/fuzz/fuzz-%.o $(O)/asan/tests/fuzz/replay.o $(O)/asan/libcommon.a
	@echo "  LD-ASAN $@"
	@$(ASAN_CC) $(ASAN_LDFLAGS) -Wl,--start-group $^ -Wl,--end-group $(DEP_LIBS) -o $@

# libFuzzer builds: everything recompiled with coverage instrumentation.


$(O)/fuzz/%.o: $(TOP)/%.c $(DEPS_GLIBC_STAMP)
	@mkdir -p $(@D)
	@$(ASAN_CC) $(ASAN_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(O)/fuzz/fuzz-%: $(O)/fuzz/tests/fuzz/fuzz-%.o $(patsubst $(TOP)/%.c,$(O)/fuzz/%.o,$(COMMON_SRCS))
	@echo "  LD-FUZZ $@"
	@$(ASAN_CC) $(ASAN_LDFLAGS) -fsanitize=fuzzer $^ $(DEP_LIBS) -o $@

RELEASE_BINS += $(TOOLS_MUSL)
TEST_BINS := $(UNIT_MUSL) $(UNIT_ASAN) $(FUZZ_REPLAY) $(TOOLS_ASAN)

.PHONY: tests fuzz
tests: $(RELEASE_BINS) $(TEST_BINS)

FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
fuzz: $(FUZZ_LIBFUZZER)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) $(TOP)/tests/fuzz-run.sh $(O) $(TOP) $(FUZZ_NAMES)
