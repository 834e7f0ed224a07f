# operator/: cloudtaser-operator, the mutating admission webhook (docs/operator.md). Its modules
# other than main.c go into liboperator.a so that unit tests and fuzz targets can link them.
# Like every program folder it uses only common/ (the injection contract it shares with the
# wrapper is common/injection.c).

OPERATOR_SRCS := $(filter-out $(TOP)/operator/main.c,$(wildcard $(TOP)/operator/*.c))
OPERATOR_SRCS += $(wildcard $(TOP)/operator/registry/*.c)
OPERATOR_LIBS_MUSL := $(O)/musl/liboperator.a
OPERATOR_LIBS_ASAN := $(O)/asan/liboperator.a

$(O)/musl/liboperator.a: $(patsubst $(TOP)/%.c,$(O)/musl/%.o,$(OPERATOR_SRCS))
	@rm -f $@ && ar rcs $@ $^
$(O)/asan/liboperator.a: $(patsubst $(TOP)/%.c,$(O)/asan/%.o,$(OPERATOR_SRCS))
	@rm -f $@ && ar rcs $@ $^

ifneq ($(wildcard $(TOP)/operator/main.c),)
$(O)/musl/bin/cloudtaser-operator: $(O)/musl/operator/main.o $(OPERATOR_LIBS_MUSL) $(O)/musl/libcommon.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(MUSL_CC) $(MUSL_LDFLAGS) -Wl,--start-group $^ -Wl,--end-group $(DEP_LIBS) -o $@.debug
	@strip --strip-all -o $@ $@.debug

$(O)/asan/bin/cloudtaser-operator: $(O)/asan/operator/main.o $(OPERATOR_LIBS_ASAN) $(O)/asan/libcommon.a
	@mkdir -p $(@D)
	@echo "  LD-ASAN $@"
	@$(ASAN_CC) $(ASAN_LDFLAGS) -Wl,--start-group $^ -Wl,--end-group $(DEP_LIBS) -o $@

RELEASE_BINS += $(O)/musl/bin/cloudtaser-operator
tests: $(O)/asan/bin/cloudtaser-operator
endif

# Unit tests (tests/unit/test-operator-*.c) and fuzz targets (tests/fuzz/fuzz-operator-*.c).
# The fuzz targets apply the patches they get with the test helper tests/lib/jsonpatch-apply.c.
OPERATOR_UNIT := $(filter test-operator-%,$(UNIT_NAMES))
OPERATOR_FUZZ := $(filter operator-%,$(FUZZ_NAMES))
$(addprefix $(O)/musl/tests/unit/,$(OPERATOR_UNIT)): $(OPERATOR_LIBS_MUSL)
$(addprefix $(O)/asan/tests/unit/,$(OPERATOR_UNIT)): $(OPERATOR_LIBS_ASAN)
$(addprefix $(O)/asan/tests/fuzz/replay-,$(OPERATOR_FUZZ)): $(OPERATOR_LIBS_ASAN) $(O)/asan/libtestlib.a
$(addprefix $(O)/fuzz/fuzz-,$(OPERATOR_FUZZ)): $(patsubst $(TOP)/%.c,$(O)/fuzz/%.o,$(OPERATOR_SRCS)) \
	$(O)/fuzz/tests/lib/jsonpatch-apply.o
# The admission test and fuzz target also link the wrapper's configuration reader: they prove
# that the environment an admitted pod gets is one the wrapper accepts (tests may link both
# programs; product code in operator/ never includes wrapper/).
$(O)/musl/tests/unit/test-operator-admission: $(O)/musl/libwrapper.a
$(O)/asan/tests/unit/test-operator-admission: $(O)/asan/libwrapper.a
$(O)/asan/tests/fuzz/replay-operator-admission: $(O)/asan/libwrapper.a
$(O)/fuzz/fuzz-operator-admission: $(O)/fuzz/wrapper/config.o $(O)/fuzz/tests/lib/wrapper-env.o

# Test tools built on the operator's modules (tests/tools/ct-registry.c: the registry client from
# the command line, for the registry end-to-end tests; tests/tools/ct-leader.c: the leader
# election, for tests/e2e/test-real-leader.sh; tests/tools/ct-unsealer.c: the sealed mode's
# unsealer, for tests/e2e/test-real-sealed.sh): explicit rules, since the generic musl tool rule
# does not group archives.
OPERATOR_TOOLS := $(filter ct-registry ct-leader ct-unsealer,$(TOOL_NAMES))
$(addprefix $(O)/musl/bin/,$(OPERATOR_TOOLS)): $(O)/musl/bin/%: $(O)/musl/tests/tools/%.o $(OPERATOR_LIBS_MUSL) $(O)/musl/libcommon.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(MUSL_CC) $(MUSL_LDFLAGS) -Wl,--start-group $^ -Wl,--end-group $(DEP_LIBS) -o $@.debug
	@strip --strip-all -o $@ $@.debug
$(addprefix $(O)/asan/bin/,$(OPERATOR_TOOLS)): $(O)/asan/bin/%: $(O)/asan/tests/tools/%.o $(OPERATOR_LIBS_ASAN) $(O)/asan/libcommon.a
	@mkdir -p $(@D)
	@$(ASAN_CC) $(ASAN_LDFLAGS) -Wl,--start-group $^ -Wl,--end-group $(DEP_LIBS) -o $@

# tests/tools/ct-credstore.c: operator/vaultsession and operator/credstore from the command line,
# for tests/e2e/test-real-credstore.sh.
ifneq ($(wildcard $(TOP)/tests/tools/ct-credstore.c),)
$(O)/musl/bin/ct-credstore: $(O)/musl/tests/tools/ct-credstore.o $(OPERATOR_LIBS_MUSL) $(O)/musl/libcommon.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(MUSL_CC) $(MUSL_LDFLAGS) -Wl,--start-group $^ -Wl,--end-group $(DEP_LIBS) -o $@.debug
	@strip --strip-all -o $@ $@.debug
$(O)/asan/bin/ct-credstore: $(O)/asan/tests/tools/ct-credstore.o $(OPERATOR_LIBS_ASAN) $(O)/asan/libcommon.a
	@mkdir -p $(@D)
	@$(ASAN_CC) $(ASAN_LDFLAGS) -Wl,--start-group $^ -Wl,--end-group $(DEP_LIBS) -o $@
endif

# A plain glibc build (no sanitizer) for valgrind, which cannot follow a static musl binary's
# allocator nor run under ASan: used by tests/bench-operator.sh for the leak and growth check.
OPERATOR_PLAIN_SRCS := $(TOP)/operator/main.c $(OPERATOR_SRCS) $(COMMON_SRCS)
$(O)/plain/bin/cloudtaser-operator: $(OPERATOR_PLAIN_SRCS) $(DEPS_GLIBC_STAMP)
	@mkdir -p $(@D)
	@echo "  CC+LD   $@ (glibc, for valgrind)"
	@gcc $(COMMON_CFLAGS) -O1 -g -isystem $(DEPS_GLIBC)/include $(OPERATOR_PLAIN_SRCS) \
		-L$(DEPS_GLIBC)/lib $(DEP_LIBS) -o $@
