# images/: OCI images built without a container daemon, reproducibly (docs/images.md).
#   make images        build/images/<name>/ (OCI image layout), <name>.tar (docker-archive),
#                      <name>.digest, for the released images
#   make test-images   the same for the images the tests use (ct-workload)
# The catalogue (which files, entrypoint, labels) is images/build-images.sh; the layout writer is
# images/build-image.py. Inputs: SOURCE_DATE_EPOCH (default: the last commit's time), VERSION,
# IMAGE_SOURCE, IMAGE_REVISION, IMAGE_TAG, IMAGE_PREFIX. The images are rebuilt on every call (it
# takes well under a second): same inputs, same digests.

IMAGE_BINS := $(O)/musl/bin/cloudtaser-init $(O)/musl/bin/cloudtaser-wrapper $(O)/musl/bin/cloudtaser-operator \
	$(O)/musl/bin/cloudtaser-broker

.PHONY: images test-images
images: $(IMAGE_BINS)
	@VERSION='$(VERSION)' $(TOP)/images/build-images.sh --out $(O)/images --bin $(O)/musl/bin

test-images: $(IMAGE_BINS) $(O)/musl/bin/ct-workload
	@VERSION='$(VERSION)' $(TOP)/images/build-images.sh --out $(O)/images --bin $(O)/musl/bin --test ct-workload
