# pinwarden: host-wide X.509 certificate pinning with eBPF.
# `make help` lists the targets.

.DELETE_ON_ERROR:
.SECONDEXPANSION:
.DEFAULT_GOAL := all

ARCH ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
ifeq ($(wildcard vmlinux/$(ARCH)),)
$(error unsupported architecture '$(ARCH)': no vmlinux/$(ARCH)/; run 'make vmlinux' on such a host to add it)
endif

CLANG ?= clang
LLVM_STRIP ?= llvm-strip
BPFTOOL ?= bpftool
CC ?= gcc
BATS ?= bats
PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/pinwarden
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc

OUT := build
V ?= 0
ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

PKGS := libbpf libelf zlib yaml-0.1 libssl libcrypto capstone
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS ?= -g -O2
CFLAGS += -Wall -Wextra -Wno-unused-parameter -Werror -std=gnu11 -D_GNU_SOURCE \
	  -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE \
	  -Iinclude -Iuserspace -I$(OUT) $(PKG_CFLAGS) -MMD -MP
LDFLAGS += -pie -Wl,-z,relro,-z,now
LDLIBS += $(PKG_LIBS)

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	      -Ivmlinux/$(ARCH) -Iinclude -Ibpf -mcpu=v3

# core.bpf.c first: it defines the shared maps, and libbpf 1.1's linker fails
# ("map relo failed to find map") on an object whose extern maps come before
# the object that defines them
BPF_SRCS := bpf/core.bpf.c $(filter-out bpf/core.bpf.c,$(sort $(wildcard bpf/*.bpf.c)))
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(BPF_SRCS))
USER_SRCS := $(sort $(wildcard userspace/*.c))
USER_OBJS := $(patsubst userspace/%.c,$(OUT)/userspace/%.o,$(USER_SRCS))
LIB_OBJS := $(filter-out $(OUT)/userspace/main.o,$(USER_OBJS))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))

.PHONY: all
all: $(OUT)/pinwarden ## build build/pinwarden (default)

# ---- kernel side: every bpf/*.bpf.c linked into one object, one skeleton ----
$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.bpf.h) $(wildcard include/*.h) vmlinux/$(ARCH)/vmlinux.h | $(OUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/pinwarden.bpf.o: $(BPF_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(BPFTOOL) gen object $@ $^

$(OUT)/pinwarden.skel.h: $(OUT)/pinwarden.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name pinwarden_bpf > $@

# ---- userspace ----
$(OUT)/userspace/%.o: userspace/%.c $(OUT)/pinwarden.skel.h | $(OUT)/userspace
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/libpw.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUT)/pinwarden: $(OUT)/userspace/main.o $(OUT)/libpw.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/bpf $(OUT)/userspace $(OUT)/tests $(OUT)/fuzz $(OUT)/fuzz/cov:
	$(Q)mkdir -p $@

# ---- tests ----
UNIT_CFLAGS := -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -Wall -Wextra \
	       -Wno-unused-parameter -Werror -std=gnu11 -D_GNU_SOURCE -Iinclude -Iuserspace \
	       -I$(OUT) $(PKG_CFLAGS)

$(OUT)/tests/%: tests/unit/%.c $(LIB_OBJS) $(wildcard include/*.h tests/unit/*.h) | $(OUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(UNIT_CFLAGS) $< $(OUT)/libpw.a $(LDLIBS) -o $@

$(UNIT_BINS): $(OUT)/libpw.a

.PHONY: unit
unit: $(UNIT_BINS) ## build and run the C unit tests
	$(Q)set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# ---- fuzzing: libFuzzer targets under tests/fuzz/, built with clang ----
FUZZ_CC ?= $(CLANG)
FUZZ_SECONDS ?= 60
FUZZ_SHORT_SECONDS ?= 3
FUZZ_TARGETS := der policy json cert
FUZZ_BINS := $(patsubst %,$(OUT)/fuzz/fuzz_%,$(FUZZ_TARGETS))
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	       -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter -Werror -std=gnu11 \
	       -D_GNU_SOURCE -Iinclude -Iuserspace $(PKG_CFLAGS)
# the userspace sources each target links, instrumented with it
FUZZ_SRCS_der :=
FUZZ_SRCS_policy := userspace/policy.c
FUZZ_SRCS_json := userspace/json.c tests/fuzz/jsoncheck.c
FUZZ_SRCS_cert := userspace/certcache.c userspace/json.c tests/fuzz/jsoncheck.c
FUZZ_LIBS := $(shell pkg-config --libs libbpf libssl libcrypto yaml-0.1 jansson 2>/dev/null)

FUZZ_DEPS = tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(wildcard include/*.h) \
	    $(wildcard userspace/*.h) $$(FUZZ_SRCS_$$*)

$(OUT)/fuzz/fuzz_%: $(FUZZ_DEPS) | $(OUT)/fuzz
	$(call msg,FUZZ-CC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $< $(FUZZ_SRCS_$*) $(FUZZ_LIBS) -o $@

# the same targets with source-based coverage instead of the sanitizers
$(OUT)/fuzz/cov/fuzz_%: $(FUZZ_DEPS) | $(OUT)/fuzz/cov
	$(call msg,FUZZ-COV,$@)
	$(Q)$(FUZZ_CC) $(filter-out -fsanitize=%,$(FUZZ_CFLAGS)) -fsanitize=fuzzer \
		-fprofile-instr-generate -fcoverage-mapping $< $(FUZZ_SRCS_$*) $(FUZZ_LIBS) -o $@

.PHONY: fuzz fuzz-short
fuzz: $(FUZZ_BINS) ## run every fuzz target for FUZZ_SECONDS (default 60) each
	$(Q)tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-short: ## the short pass `make test` runs (FUZZ_SHORT_SECONDS, default 3, each)
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SHORT_SECONDS)

.PHONY: fuzz-coverage
fuzz-coverage: $(patsubst %,$(OUT)/fuzz/cov/fuzz_%,$(FUZZ_TARGETS)) ## line and branch coverage reached by each target's corpus
	$(Q)tests/fuzz/coverage.sh $(FUZZ_TARGETS)

.PHONY: test
test: all unit fuzz-short ## run the unit tests, a short fuzzing pass and the BATS suites (root)
	$(BATS) --timing tests/

.PHONY: bench
bench: all ## benchmark with and without pinwarden, side by side; writes BENCHMARKS.md
	tests/bench/run.sh

.PHONY: bench-before
bench-before: ## the handshake rounds of bench on an older commit (BENCH_BEFORE_REV, default b0d3b03); then make bench BENCH_BEFORE=build/bench-before
	tests/bench/before.sh

.PHONY: run
run: all ## run the daemon with the built-in default policy (audit everything)
	./$(OUT)/pinwarden run

.PHONY: deps
deps: ## install every Debian package the build and the tests need (as root)
	tools/deps.sh

.PHONY: vmlinux
vmlinux: ## regenerate vmlinux/$(ARCH)/vmlinux.h from this kernel's BTF
	mkdir -p vmlinux/$(ARCH)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/$(ARCH)/vmlinux.h

# The unit names the installed paths; the policy in $(SYSCONFDIR) is created from the
# example only when there is none: an operator's policy is never overwritten.
.PHONY: install
install: all ## install the binary, man pages, systemd unit and example policy (DESTDIR, PREFIX)
	install -D -m 0755 $(OUT)/pinwarden $(DESTDIR)$(SBINDIR)/pinwarden
	install -D -m 0644 docs/pinwarden.8 $(DESTDIR)$(MANDIR)/man8/pinwarden.8
	install -D -m 0644 docs/pinwarden-policy.5 $(DESTDIR)$(MANDIR)/man5/pinwarden-policy.5
	install -D -m 0644 docs/incident-response.md $(DESTDIR)$(DOCDIR)/incident-response.md
	install -D -m 0644 deploy/policy.yaml $(DESTDIR)$(DOCDIR)/examples/policy.yaml
	install -d -m 0755 $(DESTDIR)$(SYSTEMDUNITDIR)
	sed -e 's|/usr/local/sbin/|$(SBINDIR)/|g' -e 's|/etc/pinwarden/|$(SYSCONFDIR)/pinwarden/|g' \
		deploy/systemd/pinwarden.service > $(DESTDIR)$(SYSTEMDUNITDIR)/pinwarden.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/pinwarden.service
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/pinwarden
	test -e $(DESTDIR)$(SYSCONFDIR)/pinwarden/policy.yaml || \
		install -m 0600 deploy/policy.yaml $(DESTDIR)$(SYSCONFDIR)/pinwarden/policy.yaml

.PHONY: format
format: ## clang-format the C sources
	clang-format -i $(USER_SRCS) $(wildcard userspace/*.h include/*.h bpf/*.c bpf/*.h tests/unit/*.c)

.PHONY: clean
clean: ## remove build/
	rm -rf $(OUT)

.PHONY: help
help: ## this list
	@grep -hE '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | \
		awk -F':.*## ' '{ printf "  make %-10s %s\n", $$1, $$2 }'

-include $(USER_OBJS:.o=.d)

# ---- the verifier on its own: load every program, attach nothing ----
$(OUT)/tests/bpfload: tests/tools/bpfload.c $(OUT)/pinwarden.skel.h | $(OUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LDFLAGS) $(LDLIBS) -o $@

.PHONY: verify
verify: $(OUT)/tests/bpfload ## load every BPF program into this kernel (attaching nothing): verifier statistics
	$(Q)$(OUT)/tests/bpfload
