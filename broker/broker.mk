# broker/: cloudtaser-broker, the in-cluster gateway between wrappers in broker mode and the
# vault (docs/protocol-broker.md). Its modules other than main.c go into libbroker.a so that
# unit tests and fuzz targets can link them. Like every program folder it uses only common/ and
# itself.

BROKER_SRCS := $(filter-out $(TOP)/broker/main.c,$(wildcard $(TOP)/broker/*.c))
BROKER_LIBS_MUSL := $(O)/musl/libbroker.a
BROKER_LIBS_ASAN := $(O)/asan/libbroker.a

$(O)/musl/libbroker.a: $(patsubst $(TOP)/%.c,$(O)/musl/%.o,$(BROKER_SRCS))
	@rm -f $@ && ar rcs $@ $^
$(O)/asan/libbroker.a: $(patsubst $(TOP)/%.c,$(O)/asan/%.o,$(BROKER_SRCS))
	@rm -f $@ && ar rcs $@ $^

ifneq ($(wildcard $(TOP)/broker/main.c),)
$(O)/musl/bin/cloudtaser-broker: $(O)/musl/broker/main.o $(BROKER_LIBS_MUSL) $(O)/musl/libcommon.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(MUSL_CC) $(MUSL_LDFLAGS) -Wl,--start-group $^ -Wl,--end-group $(DEP_LIBS) -o $@.debug
	@strip --strip-all -o $@ $@.debug

$(O)/asan/bin/cloudtaser-broker: $(O)/asan/broker/main.o $(BROKER_LIBS_ASAN) $(O)/asan/libcommon.a
	@mkdir -p $(@D)
	@echo "  LD-ASAN $@"
	@$(ASAN_CC) $(ASAN_LDFLAGS) -Wl,--start-group $^ -Wl,--end-group $(DEP_LIBS) -o $@

RELEASE_BINS += $(O)/musl/bin/cloudtaser-broker
tests: $(O)/asan/bin/cloudtaser-broker
endif

# Unit tests (tests/unit/test-broker-*.c) and fuzz targets (tests/fuzz/fuzz-broker-*.c).
BROKER_UNIT := $(filter test-broker-%,$(UNIT_NAMES))
BROKER_FUZZ := $(filter broker-%,$(FUZZ_NAMES))
$(addprefix $(O)/musl/tests/unit/,$(BROKER_UNIT)): $(BROKER_LIBS_MUSL)
$(addprefix $(O)/asan/tests/unit/,$(BROKER_UNIT)): $(BROKER_LIBS_ASAN)
$(addprefix $(O)/asan/tests/fuzz/replay-,$(BROKER_FUZZ)): $(BROKER_LIBS_ASAN)
$(addprefix $(O)/fuzz/fuzz-,$(BROKER_FUZZ)): $(patsubst $(TOP)/%.c,$(O)/fuzz/%.o,$(BROKER_SRCS))
