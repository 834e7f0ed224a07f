# deps/: third-party libraries from Debian source packages, built once into a cache outside the tree.
# The cache directory is keyed by the versions actually built and by the build recipe, so changing
# either rebuilds, and a second `make` (or a second clone on the same machine) reuses the libraries.
#
# deps/versions holds the tested pins; deps/resolve.sh turns them into the versions apt can fetch
# today (the pin, or, once Debian has replaced it, the newest revision of the same upstream
# release, with a loud warning). The key hashes that resolved list, not the file: a cache built
# from a substitute is never mistaken for one built from the pin. resolve.sh remembers its answer
# in DEPS_RESOLVE_CACHE until the pins or apt's source indices change.

CACHE_HOME := $(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME),$(HOME)/.cache)
DEPS_VERSIONS ?= $(TOP)/deps/versions
DEPS_RESOLVE_CACHE ?= $(O)/.deps-resolved
DEPS_RESOLVED := $(shell $(TOP)/deps/resolve.sh --cache $(DEPS_RESOLVE_CACHE) $(DEPS_VERSIONS))
DEPS_KEY := $(shell { echo '$(DEPS_RESOLVED)'; cat $(TOP)/deps/build.sh; } | sha256sum | cut -c1-16)
DEPS_DIR := $(CACHE_HOME)/cloudtaser/deps-$(DEPS_KEY)
DEPS_MUSL := $(DEPS_DIR)/musl
DEPS_GLIBC := $(DEPS_DIR)/glibc
DEPS_MUSL_STAMP := $(DEPS_MUSL)/.built
DEPS_GLIBC_STAMP := $(DEPS_GLIBC)/.built
SETUP_STAMP := $(O)/.setup-done

# `make setup` is run automatically the first time (and whenever deps/setup.sh changes).
$(SETUP_STAMP): $(TOP)/deps/setup.sh
	@$(TOP)/deps/setup.sh
	@mkdir -p $(@D) && touch $@

# Build into a temporary prefix and rename, so an interrupted build never looks complete. A lock
# per flavour serialises concurrent builds (two clones, or two makes in one tree): the second
# waits, then finds the stamp and does nothing.
$(DEPS_DIR)/%/.built: | $(SETUP_STAMP)
	@mkdir -p $(DEPS_DIR)
	@flock $(DEPS_DIR)/.lock-$* sh -c 'test -f $@ || { \
		rm -rf $(DEPS_DIR)/$*.tmp && \
		DEPS_RESOLVED="$(DEPS_RESOLVED)" $(TOP)/deps/build.sh $* $(DEPS_DIR)/$*.tmp && \
		rm -rf $(DEPS_DIR)/$* && mv $(DEPS_DIR)/$*.tmp $(DEPS_DIR)/$* && touch $@; }'

deps: $(DEPS_MUSL_STAMP) $(DEPS_GLIBC_STAMP)

# For tests and scripts: the resolved versions and the cache directory they select.
.PHONY: print-deps-key
print-deps-key:
	@echo '$(DEPS_KEY) $(DEPS_RESOLVED)'

