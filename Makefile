# pinwarden: host-wide X.509 certificate pinning with eBPF.
# `make help` lists the targets.

.DELETE_ON_ERROR:
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

BPF_SRCS := $(sort $(wildcard bpf/*.bpf.c))
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

$(OUT)/bpf $(OUT)/userspace $(OUT)/tests:
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

.PHONY: test
test: all unit ## run the unit tests and the BATS suites (needs root for the BPF suites)
	$(BATS) --timing tests/

.PHONY: bench
bench: all ## benchmark with and without pinwarden, side by side; writes BENCHMARKS.md
	tests/bench/run.sh

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
	@grep -E '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | \
		awk -F':.*## ' '{ printf "  make %-10s %s\n", $$1, $$2 }'

-include $(USER_OBJS:.o=.d)
