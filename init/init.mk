# init/: cloudtaser-init, the init container's entrypoint (docs/init.md). It installs the wrapper
# into the pod's shared volume and checks it against the SHA-256 of the stripped wrapper, which is
# compiled into init/digest.c: so init depends on the wrapper's build. Its modules other than
# main.c and digest.c go into libinit.a for the unit tests (tests/unit/test-init-*.c).

INIT_SRCS := $(filter-out $(TOP)/init/main.c $(TOP)/init/digest.c,$(wildcard $(TOP)/init/*.c))
INIT_WRAPPER := $(O)/musl/bin/cloudtaser-wrapper

$(O)/musl/libinit.a: $(patsubst $(TOP)/%.c,$(O)/musl/%.o,$(INIT_SRCS))
	@rm -f $@ && ar rcs $@ $^
$(O)/asan/libinit.a: $(patsubst $(TOP)/%.c,$(O)/asan/%.o,$(INIT_SRCS))
	@rm -f $@ && ar rcs $@ $^

# digest.o carries the wrapper's digest (-DCLOUDTASER_WRAPPER_SHA256): rebuilt when it changes.
# Both builds of init embed the digest of the released (musl, stripped) wrapper.
$(O)/musl/init/digest.o: $(TOP)/init/digest.c $(INIT_WRAPPER) $(DEPS_MUSL_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      init/digest.c (sha256 of $(INIT_WRAPPER:$(TOP)/%=%))"
	@d=$$(sha256sum $(INIT_WRAPPER) | cut -c1-64) && [ $${#d} -eq 64 ] && \
		$(MUSL_CC) $(MUSL_CFLAGS) -DCLOUDTASER_WRAPPER_SHA256="\"$$d\"" -MMD -MP -c $< -o $@
$(O)/asan/init/digest.o: $(TOP)/init/digest.c $(INIT_WRAPPER) $(DEPS_GLIBC_STAMP)
	@mkdir -p $(@D)
	@echo "  CC-ASAN init/digest.c (sha256 of $(INIT_WRAPPER:$(TOP)/%=%))"
	@d=$$(sha256sum $(INIT_WRAPPER) | cut -c1-64) && [ $${#d} -eq 64 ] && \
		$(ASAN_CC) $(ASAN_CFLAGS) -DCLOUDTASER_WRAPPER_SHA256="\"$$d\"" -MMD -MP -c $< -o $@

$(O)/musl/bin/cloudtaser-init: $(O)/musl/init/main.o $(O)/musl/init/digest.o $(O)/musl/libinit.a $(O)/musl/libcommon.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(MUSL_CC) $(MUSL_LDFLAGS) $^ $(DEP_LIBS) -o $@.debug
	@strip --strip-all -o $@ $@.debug

$(O)/asan/bin/cloudtaser-init: $(O)/asan/init/main.o $(O)/asan/init/digest.o $(O)/asan/libinit.a $(O)/asan/libcommon.a
	@mkdir -p $(@D)
	@echo "  LD-ASAN $@"
	@$(ASAN_CC) $(ASAN_LDFLAGS) $^ $(DEP_LIBS) -o $@

RELEASE_BINS += $(O)/musl/bin/cloudtaser-init
tests: $(O)/asan/bin/cloudtaser-init

# Unit tests of init's modules (tests/unit/test-init-*.c) link libinit.a too.
INIT_UNIT := $(filter test-init-%,$(UNIT_NAMES))
$(addprefix $(O)/musl/tests/unit/,$(INIT_UNIT)): $(O)/musl/libinit.a
$(addprefix $(O)/asan/tests/unit/,$(INIT_UNIT)): $(O)/asan/libinit.a
