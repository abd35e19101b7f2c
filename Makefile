# Fluorecon build. `make demo` builds everything and runs the plugin in ImageJ on the
# bundled sample data; `make test` runs every test. See README.md.

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

VERSION   := 0.1.0
LIB       := target/release/libfluorecon.so
CLI       := target/release/fluorecon
JAR       := java/target/Fluorecon_-$(VERSION).jar
# Offline Maven against Debian's repository when it is there, Maven Central otherwise.
MVN_REPO  := /usr/share/maven-repo
MVN_FLAGS ?= $(if $(wildcard $(MVN_REPO)/net/imagej/ij),-o -Dmaven.repo.local=$(MVN_REPO),)
MVN       := mvn -B -q $(MVN_FLAGS)
FIJI      ?=

.PHONY: all deps native jar demo test test-rust test-java test-imagej lint install clean

all: jar

deps:
	@scripts/install-deps.sh

native:
	cargo build --release --lib --bins

# The native library and the plugin jar that carries it (natives/linux_64/).
jar: deps native
	cd java && $(MVN) package -DskipTests
	@echo "Built $(JAR)"

# Builds everything, then runs the plugin in a real (headless) ImageJ on samples/,
# writing the results to demo-output/.
demo: jar
	tests/imagej/run.sh demo

lint:
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings
	cargo check --release --features cuda

test-rust:
	cargo test --release

test-java: native
	cd java && mvn -B $(MVN_FLAGS) package

test-imagej: jar
	tests/imagej/run.sh test

# Every test: Rust unit and integration tests, JUnit, end-to-end macros in ImageJ.
test: deps lint test-rust test-java test-imagej

install: jar
	@test -n "$(FIJI)" || { echo "usage: make install FIJI=/path/to/Fiji.app"; exit 2; }
	@test -d "$(FIJI)/plugins" || { echo "$(FIJI) has no plugins/ folder: is it a Fiji.app?"; exit 2; }
	rm -f "$(FIJI)"/plugins/Fluorecon_*.jar
	cp $(JAR) "$(FIJI)/plugins/"
	@echo "Installed $(notdir $(JAR)) into $(FIJI)/plugins; restart Fiji."

clean:
	cargo clean
	rm -rf java/target demo-output
