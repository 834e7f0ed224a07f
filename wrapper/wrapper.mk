# wrapper/: cloudtaser-wrapper, the container entrypoint (docs/wrapper.md). Its modules other than
# main.c go into libwrapper.a so that unit tests and fuzz targets can link them.

WRAPPER_SRCS := $(filter-out $(TOP)/wrapper/main.c,$(wildcard $(TOP)/wrapper/*.c))

$(O)/musl/libwrapper.a: $(patsubst $(TOP)/%.c,$(O)/musl/%.o,$(WRAPPER_SRCS))
	@rm -f $@ && ar rcs $@ $^
$(O)/asan/libwrapper.a: $(patsubst $(TOP)/%.c,$(O)/asan/%.o,$(WRAPPER_SRCS))
	@rm -f $@ && ar rcs $@ $^

$(O)/musl/bin/cloudtaser-wrapper: $(O)/musl/wrapper/main.o $(O)/musl/libwrapper.a $(O)/musl/libcommon.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(MUSL_CC) $(MUSL_LDFLAGS) $^ $(DEP_LIBS) -o $@.debug
	@strip --strip-all -o $@ $@.debug

$(O)/asan/bin/cloudtaser-wrapper: $(O)/asan/wrapper/main.o $(O)/asan/libwrapper.a $(O)/asan/libcommon.a
	@mkdir -p $(@D)
	@echo "  LD-ASAN $@"
	@$(ASAN_CC) $(ASAN_LDFLAGS) $^ $(DEP_LIBS) -o $@

RELEASE_BINS += $(O)/musl/bin/cloudtaser-wrapper
tests: $(O)/asan/bin/cloudtaser-wrapper

# Unit tests (tests/unit/test-wrapper-*.c) and fuzz targets (tests/fuzz/fuzz-wrapper-*.c) of the
# wrapper's modules link libwrapper.a too (the link rules group the archives).
WRAPPER_UNIT := $(filter test-wrapper-%,$(UNIT_NAMES))
WRAPPER_FUZZ := $(filter wrapper-%,$(FUZZ_NAMES))
$(addprefix $(O)/musl/tests/unit/,$(WRAPPER_UNIT)): $(O)/musl/libwrapper.a
$(addprefix $(O)/asan/tests/unit/,$(WRAPPER_UNIT)): $(O)/asan/libwrapper.a
$(addprefix $(O)/asan/tests/fuzz/replay-,$(WRAPPER_FUZZ)): $(O)/asan/libwrapper.a
$(addprefix $(O)/fuzz/fuzz-,$(WRAPPER_FUZZ)): $(patsubst $(TOP)/%.c,$(O)/fuzz/%.o,$(WRAPPER_SRCS))
