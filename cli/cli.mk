# cli/: cloudtaser, the plan-file workflow between vault and clusters (docs/cli.md). Its modules
# other than main.c go into libcli.a for the unit tests (tests/unit/test-cli-*.c) and the fuzz
# targets (tests/fuzz/fuzz-cli-*.c). One file per command group: plan.c (the plan file),
# discover.c, protect.c, connect.c (target ...), source.c (source ...).

CLI_SRCS := $(filter-out $(TOP)/cli/main.c,$(wildcard $(TOP)/cli/*.c))
CLI_LIBS_MUSL := $(O)/musl/libcli.a
CLI_LIBS_ASAN := $(O)/asan/libcli.a

$(O)/musl/libcli.a: $(patsubst $(TOP)/%.c,$(O)/musl/%.o,$(CLI_SRCS))
	@rm -f $@ && ar rcs $@ $^
$(O)/asan/libcli.a: $(patsubst $(TOP)/%.c,$(O)/asan/%.o,$(CLI_SRCS))
	@rm -f $@ && ar rcs $@ $^

$(O)/musl/bin/cloudtaser: $(O)/musl/cli/main.o $(CLI_LIBS_MUSL) $(O)/musl/libcommon.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(MUSL_CC) $(MUSL_LDFLAGS) -Wl,--start-group $^ -Wl,--end-group $(DEP_LIBS) -o $@.debug
	@strip --strip-all -o $@ $@.debug

$(O)/asan/bin/cloudtaser: $(O)/asan/cli/main.o $(CLI_LIBS_ASAN) $(O)/asan/libcommon.a
	@mkdir -p $(@D)
	@echo "  LD-ASAN $@"
	@$(ASAN_CC) $(ASAN_LDFLAGS) -Wl,--start-group $^ -Wl,--end-group $(DEP_LIBS) -o $@

RELEASE_BINS += $(O)/musl/bin/cloudtaser
tests: $(O)/asan/bin/cloudtaser

CLI_UNIT := $(filter test-cli-%,$(UNIT_NAMES))
CLI_FUZZ := $(filter cli-%,$(FUZZ_NAMES))
$(addprefix $(O)/musl/tests/unit/,$(CLI_UNIT)): $(CLI_LIBS_MUSL)
$(addprefix $(O)/asan/tests/unit/,$(CLI_UNIT)): $(CLI_LIBS_ASAN)
$(addprefix $(O)/asan/tests/fuzz/replay-,$(CLI_FUZZ)): $(CLI_LIBS_ASAN)
$(addprefix $(O)/fuzz/fuzz-,$(CLI_FUZZ)): $(patsubst $(TOP)/%.c,$(O)/fuzz/%.o,$(CLI_SRCS))

# The man page, generated from the command table by the program itself (`cloudtaser man`).
$(O)/man/cloudtaser.1: $(O)/musl/bin/cloudtaser
	@mkdir -p $(@D)
	@echo "  MAN     $@"
	@$< man > $@.tmp && mv $@.tmp $@
all: $(O)/man/cloudtaser.1
