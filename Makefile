# Builds the native library with cargo and installs the plugin: every .lua file under
# lua/ (copied recursively, so new helper modules need no change here) into LUADIR,
# and the library into LIBDIR under the name `require("aws_lambda_native")` loads.
# The library is installed stripped; its debug info is split off into
# build/lib/aws_lambda_native.so.debug, which `make install-debug` puts beside it (gdb and
# perf find it there through the library's .gnu_debuglink).
#
#   make && make install PREFIX=/usr/local        # -> /usr/local/share/lua/5.1, /usr/local/lib/lua/5.1
#   make install-debug PREFIX=/usr/local          # + lib/lua/5.1/aws_lambda_native.so.debug
#   make install DESTDIR=/tmp/stage               # staged install (packaging)
#   luarocks make rockspec/aws-lambda-native-<version>-1.rockspec   # the rock sets LUADIR, LIBDIR
#   make dist                                     # dist/: release tarball, rockspec, source rock
#
# CARGO_TARGET_DIR is honoured (set it to reuse another build's target directory).

PREFIX ?= /usr/local
LUADIR ?= $(PREFIX)/share/lua/5.1
LIBDIR ?= $(PREFIX)/lib/lua/5.1
DESTDIR ?=

CARGO ?= cargo
OBJCOPY ?= objcopy
CARGO_FLAGS ?= --release --locked
INSTALL ?= install

# make exports variables set on its command line to the recipes. luarocks sets CC (and
# CFLAGS, passed by the rockspec only to silence a warning): cargo's C builds (ring) would
# see other flags than a plain `cargo build` and rebuild, so cargo keeps the caller's.
$(foreach v,CC CFLAGS CXX CXXFLAGS LDFLAGS AR,\
    $(if $(filter command line,$(origin $(v))),$(eval unexport $(v))))

TARGET_DIR := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),target)
CARGO_LIB := $(TARGET_DIR)/release/libaws_lambda_native.so
LIB_NAME := aws_lambda_native.so

.PHONY: all build install install-debug uninstall test dist clean

all: build

build:
	@command -v $(CARGO) >/dev/null || { \
		echo "$(CARGO) not found: install a Rust toolchain (https://rustup.rs)" >&2; exit 1; }
	$(CARGO) build $(CARGO_FLAGS) --lib
	mkdir -p build/lib
	$(OBJCOPY) --only-keep-debug $(CARGO_LIB) build/lib/$(LIB_NAME).debug
	$(OBJCOPY) --strip-debug --strip-unneeded \
		--add-gnu-debuglink=build/lib/$(LIB_NAME).debug $(CARGO_LIB) build/lib/$(LIB_NAME).tmp
	chmod 0755 build/lib/$(LIB_NAME).tmp
	mv -f build/lib/$(LIB_NAME).tmp build/lib/$(LIB_NAME)

install:
	@test -f build/lib/$(LIB_NAME) || { echo "run 'make' first" >&2; exit 1; }
	cd lua && find . -type f -name '*.lua' | sort | while read -r f; do \
		d="$(DESTDIR)$(LUADIR)/$$(dirname "$$f")"; \
		mkdir -p "$$d" && $(INSTALL) -m 0644 "$$f" "$$d/" || exit 1; \
	done
	mkdir -p "$(DESTDIR)$(LIBDIR)"
	$(INSTALL) -m 0755 build/lib/$(LIB_NAME) "$(DESTDIR)$(LIBDIR)/$(LIB_NAME)"

install-debug: install
	$(INSTALL) -m 0644 build/lib/$(LIB_NAME).debug "$(DESTDIR)$(LIBDIR)/$(LIB_NAME).debug"

uninstall:
	cd lua && find . -type f -name '*.lua' | while read -r f; do \
		rm -f "$(DESTDIR)$(LUADIR)/$$f"; \
	done
	cd lua && find . -mindepth 1 -type d | sort -r | while read -r d; do \
		rmdir "$(DESTDIR)$(LUADIR)/$$d" 2>/dev/null || true; \
	done
	rm -f "$(DESTDIR)$(LIBDIR)/$(LIB_NAME)" "$(DESTDIR)$(LIBDIR)/$(LIB_NAME).debug"

test:
	ci/test.sh

dist:
	ci/dist.sh

clean:
	$(CARGO) clean
	rm -rf build dist
