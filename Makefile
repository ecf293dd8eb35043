# b2d — see README.md. `make up` runs the main job, `make test` the tests.
SHELL := /bin/bash
CARGO ?= cargo
MUSL_TARGET := x86_64-unknown-linux-musl
OUT := out
# Where cargo puts its builds: CARGO_TARGET_DIR when set, as cargo does.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: all build init deps lint test unit bench bench-sample bench-shares bench-boot fuzz torture up clean

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
## (unit, loop-device, real tools, QEMU boots of out/b2d.iso, a sample of
## the fault suite) and every benchmark once.
test: deps lint iso unit bench-sample

bench: bench-shares bench-boot
	$(CARGO) bench --bench disk_create

## Every benchmark once (one run of each case, the boot bench without its
## resumes, which the suspend test covers, the shares bench on a tenth of
## its files and bytes): `make test` runs this so the
## benchmarks keep working; their figures come from `make bench`.
bench-sample: iso build
	$(CARGO) build --release --example netblast --target $(MUSL_TARGET)
	B2D_BENCH_RUNS=1 $(CARGO) bench --bench disk_create
	B2D_BENCH_RUNS=1 B2D_BENCH_BOOTS_ONLY=1 $(CARGO) bench -p qemu-tests --bench boot
	B2D_BENCH_RUNS=1 B2D_BENCH_SCALE=10 $(CARGO) bench --bench shares

## Cold and warm boots against a naive shell-init floor, from one ISO, in
## one run (about 10 minutes under TCG).
bench-boot: iso build
	$(CARGO) bench -p qemu-tests --bench boot

## Shares and forwarded ports against the guest's disk, the host and the
## guest's loopback: boots a machine (minutes under TCG).
bench-shares: iso build
	$(CARGO) build --release --example netblast --target $(MUSL_TARGET)
	$(CARGO) bench --bench shares

## The whole fault suite in real VMs (about an hour under TCG): power
## cuts at 24 points of a first boot, cuts in use, killed services, a
## crash loop, a full disk, misbehaving hooks, a reboot soak; one summary
## line at the end. `make test` runs a sample of it (tests/torture.rs).
## ONLY="TEXT …" runs the cases whose names contain one of the words.
## A debug build: a failed case must unwind (the release profile aborts).
torture: iso build
	B2D_TORTURE=full $(CARGO) run -p qemu-tests --bin torture -- $(ONLY)

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
