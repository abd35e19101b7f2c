# Fluorecon build. `make demo` builds everything and runs the plugin in ImageJ on the
# bundled sample data; `make test` runs every test. See README.md.

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

VERSION   := 0.1.0
LIB       := target/release/libfluorecon.so
CLI       := target/release/fluorecon
JAR       := java/target/Fluorecon_-$(VERSION).jar
# Offline Maven against Debian's repository when it is there, Maven Central otherwise. Both
# are recursive (`=`), and the test is a shell test, not $(wildcard) (make caches directory
# listings): they are evaluated when a recipe runs, after `deps` has installed the packages,
# not when the Makefile is read (a fresh machine's first `make demo` went to Maven Central).
MVN_REPO  := /usr/share/maven-repo
MVN_FLAGS ?= $(if $(shell test -d $(MVN_REPO)/net/imagej/ij && echo yes),-o -Dmaven.repo.local=$(MVN_REPO),)
MVN        = mvn -B -q $(MVN_FLAGS)
FIJI      ?=

.PHONY: all deps cuda-toolchain cuda-compiler native native-cuda natives-cross check-natives release jar demo test test-rust fuzz test-cuda-fallback test-java test-imagej test-natives lint install clean

all: jar

deps:
	@scripts/install-deps.sh

native:
	cargo build --release --lib --bins

# The CUDA build of the library (the `cuda` feature), in its own target folder so that the two
# builds do not rebuild each other, copied to $(CUDA_LIB) for the jar. Built by `make jar` only
# when a CUDA toolchain is there: nvcc on PATH or CUDA_HOME set (e.g. after
# `source ~/.cache/fluorecon-cuda13/env.sh`, see README "Building with CUDA").
CUDA_TARGET := target-cuda
CUDA_LIB    := $(CUDA_TARGET)/natives/libfluorecon_cuda.so
HAVE_CUDA   := $(if $(or $(shell command -v nvcc 2>/dev/null),$(CUDA_HOME)),yes,)

native-cuda:
	CARGO_TARGET_DIR=$(CUDA_TARGET) cargo build --release --lib --features cuda
	mkdir -p $(dir $(CUDA_LIB))
	cp $(CUDA_TARGET)/release/libfluorecon.so $(CUDA_LIB)

# The native libraries and the plugin jar that carries them (natives/linux_64/): the CPU library
# always, the CUDA library when a CUDA toolchain is available.
jar: deps native
ifeq ($(HAVE_CUDA),yes)
	$(MAKE) native-cuda
else
	@# also the copy Maven made earlier: it does not clean target/classes by itself
	@rm -f $(CUDA_LIB) java/target/classes/natives/linux_64/libfluorecon_cuda.so
	@echo "No CUDA toolchain (no nvcc on PATH, CUDA_HOME unset): building the jar with the CPU library only."
endif
	cd java && $(MVN) package -DskipTests
	@echo "Built $(JAR)$(if $(HAVE_CUDA), with the CUDA library, with the CPU library only)"

# Builds everything, then runs the plugin in a real (headless) ImageJ on samples/,
# writing the results to demo-output/.
demo: jar
	tests/imagej/run.sh demo

# The CUDA 13 toolchain (nvcc for candle's kernels, the CUDA libraries the `cuda` feature links)
# from PyPI wheels into ~/.cache/fluorecon-cuda13; quick when already there. No GPU needed.
CUDA_ENV := $(HOME)/.cache/fluorecon-cuda13/env.sh
WITH_CUDA := source $(CUDA_ENV) && export LD_LIBRARY_PATH=$$CUDA_HOME/lib64$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH} &&

cuda-toolchain:
	@scripts/cuda-toolchain.sh

# nvcc and the headers only: enough to compile-check the `cuda` feature (CI).
cuda-compiler:
	@scripts/cuda-toolchain.sh --compiler-only

lint: cuda-compiler
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings
	$(WITH_CUDA) cargo clippy --release --all-targets --features cuda -- -D warnings

test-rust:
	cargo test --release

# A longer run of the readers' fuzz test (tests/fuzz.rs; `make test` runs a bounded one):
# 100 times the mutations, another seed with FUZZ_SEED=N.
fuzz:
	FLUORECON_FUZZ_SCALE=$${FUZZ_SCALE:-100} FLUORECON_FUZZ_SEED=$${FUZZ_SEED:-16} \
		cargo test --release --test fuzz -- --nocapture

# The CUDA build's own tests on a machine without a GPU: it must report why there is no GPU and
# run on the CPU, RL and SIM asked for CUDA must give the CPU's result with the reason; the kernels are
# compiled with NVRTC and cuFFT is opened when those libraries are found (no GPU needed). The GPU
# side is scripts/gpu-tests.sh. Not part of `make test`: the full toolchain is a ~1 GB download
# and the CUDA build ~12 minutes on 2 cores, so CI compile-checks the feature (`lint`) instead.
test-cuda-fallback: cuda-toolchain
	$(WITH_CUDA) cargo test --release --features cuda --lib -- device cuda sim
	$(WITH_CUDA) cargo test --release --features cuda --test gpu_rl --test gpu_fit --test gpu_sim

test-java: native
	cd java && mvn -B $(MVN_FLAGS) package

test-imagej: jar
	tests/imagej/run.sh test

# The engine for every desktop platform (target-cross/natives/<platform>/, target-cross/cli/):
# Linux x86-64 and arm64 against glibc 2.28, Windows x86-64, macOS Intel and Apple silicon.
# The toolchains (Rust targets, MinGW-w64, Zig, Wine) are installed first when missing.
natives-cross:
	@scripts/cross-toolchains.sh
	scripts/build-natives.sh

# Checks every platform library (format, JNI exports against the Java classes, dependencies,
# glibc version) and runs the Windows CLI under Wine against the Linux one.
check-natives: jar
	scripts/check-natives.sh

# dist/: the plugin jar with every platform's library (and the Linux CUDA library when a CUDA
# toolchain is there), the CLI of each platform as an archive, SHA-256 sums.
release: deps natives-cross
ifeq ($(HAVE_CUDA),yes)
	$(MAKE) native-cuda
endif
	cd java && $(MVN) clean package -DskipTests -Dnative.dir=$(CURDIR)/target-cross/natives/linux_64 \
	  -Dnative.cross.dir=$(CURDIR)/target-cross/natives
	scripts/check-natives.sh
	scripts/check-natives.sh --jar $(JAR) --no-run
	scripts/make-dist.sh $(VERSION)

# The platform checks as part of `make test` when the cross builds are there (after
# `make natives-cross` or `make release`); skipped on a clean checkout, where building four
# more platforms would double the test time.
test-natives: jar
	@if [ -d target-cross/natives ]; then scripts/check-natives.sh; \
	else echo "test-natives: skipped (no target-cross/natives: run make natives-cross first)"; fi

# Every test: Rust unit and integration tests, JUnit, end-to-end macros in ImageJ.
test: deps lint test-rust test-java test-imagej test-natives

install: jar
	@test -n "$(FIJI)" || { echo "usage: make install FIJI=/path/to/Fiji.app"; exit 2; }
	@test -d "$(FIJI)/plugins" || { echo "$(FIJI) has no plugins/ folder: is it a Fiji.app?"; exit 2; }
	rm -f "$(FIJI)"/plugins/Fluorecon_*.jar
	cp $(JAR) "$(FIJI)/plugins/"
	@echo "Installed $(notdir $(JAR)) into $(FIJI)/plugins; restart Fiji."

clean:
	cargo clean
	rm -rf $(CUDA_TARGET) target-cross dist java/target demo-output
