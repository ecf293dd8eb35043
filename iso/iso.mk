# ISO rules, included by the top-level Makefile (`include iso/iso.mk`).
#
#   make iso        out/b2d.iso + out/b2d.iso.manifest (runs iso/build.sh as
#                   root after `make init` built the static b2d-init)
#   make iso-deps   install the host packages the ISO build needs
#
# iso/build.sh caches under iso/cache/ (packages, unpacked kernel, squashfs,
# initramfs, EFI image): a second `make iso` with unchanged inputs takes
# seconds. See iso/README.md.

ISO_OUT ?= out

.PHONY: iso iso-deps iso-measure

iso: init
	B2D_OUT="$(CURDIR)/$(ISO_OUT)" bash iso/build.sh

iso-deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	  $$(grep -v '^#' iso/host-packages.txt)

## Compare squashfs compressions by ISO size and TCG boot time.
iso-measure: init
	bash iso/measure-compression.sh
