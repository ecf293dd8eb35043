# b2d — see README.md. `make up` runs the main job, `make test` the tests.
SHELL := /bin/bash
CARGO ?= cargo
MUSL_TARGET := x86_64-unknown-linux-musl
OUT := out
# Where cargo puts its builds: CARGO_TARGET_DIR when set, as cargo does.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: all build init deps lint test unit bench bench-shares bench-boot fuzz up clean

all: build

# ISO rules (`make iso`), kept beside the ISO build script.
-include iso/iso.mk

## Host tools and packages the build and tests need (idempotent).
deps:
	bash .ci/deps

build:
	$(CARGO) build --release --bin b2d

## The guest agent: a static musl binary.
init:
	$(CARGO) build --release --target $(MUSL_TARGET) --bin b2d-init

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) nextest run --workspace --no-fail-fast

## Everything CI runs: lint, the static guest binary, the ISO, all tests
## (unit, loop-device, real tools, and QEMU boots of out/b2d.iso).
test: deps lint iso unit

bench: bench-shares bench-boot
	$(CARGO) bench --bench disk_create

## Cold and warm boots against a naive shell-init floor, from one ISO, in
## one run (about 10 minutes under TCG).
bench-boot: iso build
	$(CARGO) bench -p qemu-tests --bench boot

## Shares and forwarded ports against the guest's disk, the host and the
## guest's loopback: boots a machine (minutes under TCG).
bench-shares: iso build
	$(CARGO) build --release --example netblast --target $(MUSL_TARGET)
	$(CARGO) bench --bench shares

## Short fuzz runs of every target, one at a time (cargo-fuzz on stable
## via RUSTC_BOOTSTRAP), from the seeds in fuzz/seeds/TARGET; what they
## find goes to fuzz/corpus/TARGET (git-ignored).
FUZZ_SECONDS ?= 60
fuzz:
	cd fuzz && for t in $$(RUSTC_BOOTSTRAP=1 cargo fuzz list); do \
	  mkdir -p corpus/$$t && \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$t corpus/$$t seeds/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=10 || exit 1; done

## The main job: build the ISO if needed (cached: seconds when nothing
## changed), create the machine NAME (default: default) if needed, boot it,
## and print how to connect. UP_ARGS passes more options, e.g.
## UP_ARGS="--memory 4G --disk-size 40G".
NAME ?= default
UP_ARGS ?=
up: deps iso build
	$(TARGET_DIR)/release/b2d up $(NAME) --iso $(OUT)/b2d.iso $(UP_ARGS)

clean:
	$(CARGO) clean
	rm -rf $(OUT)
