# Build, boot and test the kernel.
#
#   make run                      boot build/image.elf under QEMU, serial on the terminal
#   make run CMDLINE="halt"       pass a kernel command line
#   make run ACCEL=kvm            use KVM (needs a usable /dev/kvm)
#   make run SMP=4                number of CPUs (default 2)
#   make run PRESET=virtio        a machine preset: pc (default), q35-iommu,
#                                 virtio, minimal (tests/presets/<name>.args),
#                                 prelinked with its expectation
#                                 (tests/presets/<name>.expect)
#   make expect PRESET=virtio     boot, then rewrite that preset's expectation
#                                 from the boot's report
#   make run INITRD_MODULES="a.o b.o"
#                                 pack objects into build/initrd.img (the
#                                 initrd format of kernel/initrd) and boot
#                                 with it: load=NAME or the shell's insmod
#                                 loads them after boot
#   make run CMDLINE=shell        end boot in the serial shell
#   make new-driver NAME=foo      scaffold builtin-modules/foo/ (a PCI driver)
#   make gdb [PRESET=...]         boot stopped under QEMU's gdb stub and debug
#                                 it, module symbols at their final addresses
#   make sizes                    module sizes against tests/sizes-baseline.json
#                                 (fails past the growth budget); make
#                                 sizes-update rewrites the baseline
#   make test                     host unit tests + QEMU boot tests
#   make bench-runtime            the runtime loader's costs (50 modules)
#   make scale-image N=1000       a bootable image of N synthetic modules
#                                 (build/scale/image-N.elf)
#   make bench                    benchmarks (docs/benchmarks.md)
#
# QEMU exits with status 33 when the kernel reports success (isa-debug-exit
# value 0x10), 37 when it booted degraded (0x12: a kept module failed its
# self-test or faulted later) and 35 on failure; 0 means a triple fault.

# Unset, MACHINE (pc), ACCEL (tcg, or $PLK_ACCEL), MEM (256M) and SMP (2)
# take the boot tests' defaults (boot_tests::QemuConfig).
MACHINE    ?=
ACCEL      ?=
MEM        ?=
SMP        ?=
QEMU_EXTRA ?=
CMDLINE    ?=
PRESET     ?= pc
INITRD_MODULES ?=

QEMU   ?= qemu-system-x86_64
GDB    ?= gdb
CARGO  ?= cargo
TARGET := x86_64-unknown-none
BUILD  := build
KERNEL_ELF := $(BUILD)/kernel.elf
IMAGE      := $(BUILD)/image.elf
# Where cargo puts what it builds (CARGO_TARGET_DIR if set).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
KERNEL_OUT := $(TARGET_DIR)/$(TARGET)/kernel/kernel

PRELINKER  := $(TARGET_DIR)/release/prelinker
# Module crates are the staticlib crates under builtin-modules/ (module-api
# and shared driver libraries are plain rlibs); fault-injection modules, built
# only for the tests, live under tests/fault-modules/.
MODULES       := $(sort $(patsubst builtin-modules/%/Cargo.toml,%,$(shell grep -l staticlib builtin-modules/*/Cargo.toml)))
FAULT_MODULES := $(sort $(patsubst tests/fault-modules/%/Cargo.toml,%,$(wildcard tests/fault-modules/*/Cargo.toml)))
# Modules the prelinker must refuse (tests/tests/abi.rs links them).
REFUSAL_MODULES := $(sort $(patsubst tests/link-refusals/%/Cargo.toml,%,$(wildcard tests/link-refusals/*/Cargo.toml)))
# Test modules loaded at run time from an initrd (never prelinked).
RUNTIME_MODULES := $(sort $(patsubst tests/runtime-modules/%/Cargo.toml,%,$(wildcard tests/runtime-modules/*/Cargo.toml)))
MODULE_LIB     = $(TARGET_DIR)/$(TARGET)/kernel/lib$(subst -,_,$(1)).a
MKINITRD   := $(TARGET_DIR)/release/mkinitrd
INITRD     := $(BUILD)/initrd.img
TEST_IMAGE := $(BUILD)/test-image.elf

# Machine presets: the QEMU arguments of each live in tests/presets/<name>.args
# (one per line, `#` comments, `{build}` for the build directory). A preset's
# `-machine` options merge with MACHINE's (its type wins); QEMU_EXTRA comes
# last.
PRESETS     := $(sort $(basename $(notdir $(wildcard tests/presets/*.args))))
ifeq ($(filter $(PRESET),$(PRESETS)),)
$(error unknown PRESET=$(PRESET); presets: $(PRESETS))
endif
# The modules a preset's machine is expected to keep (one name a line),
# written from a boot's report by `make expect`; the prelinker lays those
# out first, so that with a correct expectation nothing moves at boot.
# EXPECT= (empty) links without an expectation.
EXPECT      ?= tests/presets/$(PRESET).expect
EXPECT_ARG   = $(if $(EXPECT),--expect $(EXPECT))
PRESET_IMAGES := $(foreach p,$(PRESETS),$(BUILD)/presets/$(p).elf)

# The QEMU command line is built in one place, boot_tests::QemuConfig (the
# boot tests and the bench use it too); plk-qemu runs it for run, gdb and
# expect, creates a preset's disk image if it needs one, and turns QEMU's
# exit status into the kernel's verdict. QEMU_OPTS are its options but the
# image and the serial console.
PLK_QEMU  := $(TARGET_DIR)/release/plk-qemu
QEMU_OPTS  = --qemu='$(QEMU)' --preset='$(PRESET)' --cmdline="$(CMDLINE)" \
	$(if $(MACHINE),--machine='$(MACHINE)') $(if $(ACCEL),--accel='$(ACCEL)') \
	$(if $(MEM),--memory='$(MEM)') $(if $(SMP),--smp='$(SMP)') \
	$(if $(strip $(INITRD_MODULES)),--initrd=$(INITRD))

.PHONY: all kernel prelinker plk-qemu modules fault-modules refusal-modules runtime-modules mkinitrd initrd image preset-images test-image run gdb expect lint fmt-check new-driver ensure-toolchain ensure-qemu ensure-gdb ensure-mold check-accel sizes sizes-update test test-modules fmt clippy clean scale-module scale-image scale-test-image bench-bin layout-v1

all: image

# The pinned toolchain with its targets and components, from
# rust-toolchain.toml (a no-op when all are installed): a fresh machine may
# have the toolchain but not the x86_64-unknown-none target.
ensure-toolchain:
	@if command -v rustup >/dev/null 2>&1; then \
		if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-none; then \
			out=$$(rustup toolchain install 2>&1) || { printf '%s\n' "$$out" >&2; echo "error: rustup could not install the toolchain of rust-toolchain.toml" >&2; exit 1; }; \
		else \
			echo "ensure-toolchain: installing the toolchain of rust-toolchain.toml with its x86_64-unknown-none target (rustup toolchain install)"; \
			rustup toolchain install || { echo "error: rustup could not install the toolchain of rust-toolchain.toml" >&2; exit 1; }; \
		fi; \
		rustup target list --installed | grep -qx x86_64-unknown-none || { echo "error: the x86_64-unknown-none target is still missing after rustup toolchain install" >&2; exit 1; }; \
	elif ! rustc --print target-list 2>/dev/null | grep -qx x86_64-unknown-none; then \
		echo "error: no rustup, and rustc does not know x86_64-unknown-none; install rustup (https://rustup.rs) so the pinned toolchain can be set up" >&2; exit 1; \
	fi

# The kernel ELF, with empty module regions.
kernel: ensure-toolchain
	$(CARGO) build --profile kernel --target $(TARGET) -p kernel
	@mkdir -p $(BUILD)
	cp $(KERNEL_OUT) $(KERNEL_ELF)

prelinker: ensure-toolchain
	$(CARGO) build --release -p prelinker

# One relocatable object per module: build the staticlib, take its member.
modules: prelinker
	$(CARGO) build --profile kernel --target $(TARGET) $(addprefix -p ,$(MODULES))
	@rm -rf $(BUILD)/modules && mkdir -p $(BUILD)/modules
	@for m in $(MODULES); do \
		$(PRELINKER) extract $(call MODULE_LIB,$$m) --output $(BUILD)/modules/$$m.o || exit 1; \
	done
	@builtin-modules/check-objects.sh -q $(BUILD)/modules/*.o
	@echo "modules: $(MODULES)"

fault-modules: prelinker
	$(CARGO) build --profile kernel --target $(TARGET) $(addprefix -p ,$(FAULT_MODULES))
	@rm -rf $(BUILD)/fault-modules && mkdir -p $(BUILD)/fault-modules
	@for m in $(FAULT_MODULES); do \
		$(PRELINKER) extract $(call MODULE_LIB,$$m) --output $(BUILD)/fault-modules/$$m.o || exit 1; \
	done
	@builtin-modules/check-objects.sh -q $(BUILD)/fault-modules/*.o

# Objects of modules the prelinker must refuse, for the ABI tests.
refusal-modules: prelinker
	$(CARGO) build --profile kernel --target $(TARGET) $(addprefix -p ,$(REFUSAL_MODULES))
	@rm -rf $(BUILD)/refusals && mkdir -p $(BUILD)/refusals
	@for m in $(REFUSAL_MODULES); do \
		$(PRELINKER) extract $(call MODULE_LIB,$$m) --output $(BUILD)/refusals/$$m.o || exit 1; \
	done

# Runtime test modules (tests/runtime-modules/*), one object each; some are
# broken on purpose (undefined symbols), so check-objects.sh is not run.
runtime-modules: prelinker
	$(CARGO) build --profile kernel --target $(TARGET) $(addprefix -p ,$(RUNTIME_MODULES))
	@rm -rf $(BUILD)/runtime-modules && mkdir -p $(BUILD)/runtime-modules
	@for m in $(RUNTIME_MODULES); do \
		$(PRELINKER) extract $(call MODULE_LIB,$$m) --output $(BUILD)/runtime-modules/$$m.o || exit 1; \
	done

mkinitrd: ensure-toolchain
	$(CARGO) build --release -p initrd --bin mkinitrd

# The initrd of `make run INITRD_MODULES="a.o b.o"`: the objects packed by
# mkinitrd, each entry named after its file without `.o`.
initrd: mkinitrd
	@test -n "$(strip $(INITRD_MODULES))" || { echo "error: INITRD_MODULES is empty" >&2; exit 1; }
	@mkdir -p $(BUILD)
	$(MKINITRD) --output $(INITRD) $(INITRD_MODULES)

# The bootable image: the kernel with its module regions filled by the
# prelinker (with PRESET's expectation), and the layout plan beside it.
image: kernel modules
	$(PRELINKER) link --kernel $(KERNEL_ELF) --output $(IMAGE) $(EXPECT_ARG) --plan-json $(BUILD)/plan.json $(BUILD)/modules/*.o

# One image per preset, each with its own expectation, for the boot tests.
preset-images: kernel modules
	@mkdir -p $(BUILD)/presets
	@for p in $(PRESETS); do \
		$(PRELINKER) link --kernel $(KERNEL_ELF) --output $(BUILD)/presets/$$p.elf \
			--expect tests/presets/$$p.expect --plan-json $(BUILD)/presets/$$p.plan.json \
			$(BUILD)/modules/*.o || exit 1; \
	done

# The same plus the fault-injection modules, for the boot tests.
test-image: kernel modules fault-modules
	$(PRELINKER) link --kernel $(KERNEL_ELF) --output $(TEST_IMAGE) --plan-json $(BUILD)/test-plan.json \
		$(BUILD)/modules/*.o $(sort $(wildcard $(BUILD)/fault-modules/*.o))

run: ensure-qemu check-accel image plk-qemu $(if $(strip $(INITRD_MODULES)),initrd)
	@$(PLK_QEMU) --image $(IMAGE) --serial console $(QEMU_OPTS) -- $(QEMU_EXTRA)

# Boots like `make run`, stopped at the first instruction with QEMU's gdb
# stub on GDB_PORT, and starts gdb on the kernel's symbols with
# kernel/gdb/plk.py, which loads every module's symbols at its linked
# address, where it is probed, and the kept ones' again at their final
# addresses when the kernel publishes them (see README, "Debugging"). The
# serial console goes to GDB_SERIAL; GDB_ARGS are added to gdb's arguments
# (e.g. GDB_ARGS="-ex 'break rtc::_::__module_selftest' -ex continue").
# QEMU runs in its own session and the shell outlives Ctrl-C, so that
# Ctrl-C in gdb interrupts the guest instead of ending QEMU, and QEMU ends
# with gdb.
GDB_PORT   ?= 1234
GDB_ARGS   ?=
GDB_SERIAL := $(BUILD)/gdb-serial.log
GDB_PLAN   := $(BUILD)/plan.json
gdb: ensure-qemu ensure-gdb check-accel image plk-qemu
	@echo "gdb: preset $(PRESET); QEMU waits on 127.0.0.1:$(GDB_PORT); serial console in $(GDB_SERIAL) (tail -f it)"
	@qemu_line=$$($(PLK_QEMU) --print --debugger --image $(IMAGE) --serial file:$(GDB_SERIAL) $(QEMU_OPTS) -- \
		$(QEMU_EXTRA) -gdb tcp:127.0.0.1:$(GDB_PORT) -S) || exit 1; \
	eval "setsid $$qemu_line </dev/null &"; qemu=$$!; \
	trap : INT; status=0; $(GDB) -q -nx \
		-ex 'set pagination off' -ex 'set breakpoint pending on' \
		-ex 'source kernel/gdb/plk.py' -ex 'set plk-plan $(GDB_PLAN)' \
		-ex 'target remote 127.0.0.1:$(GDB_PORT)' -ex 'plk-symbols' \
		$(GDB_ARGS) $(KERNEL_ELF) || status=$$?; \
	kill $$qemu 2>/dev/null; wait $$qemu 2>/dev/null; exit $$status

# Boots PRESET's machine and writes its expectation from the boot's report.
# The image booted for it is linked without an expectation.
expect: ensure-qemu kernel modules plk-qemu
	@test -n "$(EXPECT)" || { echo "error: EXPECT is empty: nowhere to write the expectation" >&2; exit 1; }
	$(PRELINKER) link --kernel $(KERNEL_ELF) --output $(BUILD)/expect-image.elf $(BUILD)/modules/*.o
	@$(PLK_QEMU) --image $(BUILD)/expect-image.elf --serial stdio $(QEMU_OPTS) -- $(QEMU_EXTRA) \
		</dev/null >$(BUILD)/expect-boot.log || \
		{ echo "error: the boot did not report success; see $(BUILD)/expect-boot.log" >&2; exit 1; }
	$(PRELINKER) expect $(BUILD)/expect-boot.log --output $(EXPECT)
	@echo "expect: wrote $(EXPECT) from $(BUILD)/expect-boot.log"

# The QEMU runner of run, gdb and expect.
plk-qemu:
	$(CARGO) build --release -p boot-tests --bin plk-qemu

# Scaffold a new driver module from tests/templates/driver/ (outside
# builtin-modules/: cargo's `builtin-modules/*` member glob matches dot
# directories too, so a template there would be taken for a crate).
# The new crate is a workspace member and a module at once (MODULES above).
new-driver:
	@name='$(NAME)'; \
	if [ -z "$$name" ]; then echo "error: usage: make new-driver NAME=<name> (lowercase letters, digits, _; at most 32)" >&2; exit 1; fi; \
	if ! printf '%s' "$$name" | grep -Eqx '[a-z][a-z0-9_]{0,31}'; then \
		echo "error: NAME=$$name: a module name starts with a lowercase letter, uses only [a-z0-9_] and has at most 32 characters" >&2; exit 1; fi; \
	if [ -e "builtin-modules/$$name" ]; then echo "error: builtin-modules/$$name already exists" >&2; exit 1; fi; \
	if find . \( -name target -o -name build -o -name .git \) -prune -o -name Cargo.toml -print | xargs grep -qx "name = \"$$name\""; then \
		echo "error: a crate named $$name already exists in the workspace" >&2; exit 1; fi; \
	mkdir -p "builtin-modules/$$name/src" && \
	for f in Cargo.toml src/lib.rs; do \
		sed "s/__NAME__/$$name/g" "tests/templates/driver/$$f.in" >"builtin-modules/$$name/$$f" || exit 1; \
	done; \
	echo "new-driver: created builtin-modules/$$name (Cargo.toml, src/lib.rs)"; \
	echo "new-driver: set VENDOR/DEVICE in builtin-modules/$$name/src/lib.rs, then: make image && make run"

check-accel:
	@if [ "$(ACCEL)" = kvm ] && ! [ -r /dev/kvm -a -w /dev/kvm ]; then \
		echo "error: ACCEL=kvm but /dev/kvm is missing or not accessible; use ACCEL=tcg" >&2; exit 1; \
	fi

# Install QEMU from Debian's packages if it is missing.
ensure-qemu:
	@if ! command -v $(QEMU) >/dev/null 2>&1; then \
		echo "$(QEMU) not found: installing qemu-system-x86"; \
		if [ "$$(id -u)" -eq 0 ]; then SUDO=; \
		elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
		else echo "error: not root and no sudo; install qemu-system-x86 by hand" >&2; exit 1; fi; \
		if ! command -v apt-get >/dev/null 2>&1; then \
			echo "error: no apt-get; install qemu-system-x86_64 by hand" >&2; exit 1; fi; \
		$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y qemu-system-x86 \
			|| { echo "error: installing qemu-system-x86 failed" >&2; exit 1; }; \
	fi

# Install gdb (with its Python support, which kernel/gdb/plk.py needs) from
# Debian's packages if it is missing; `make gdb` and the boot tests use it.
ensure-gdb:
	@if ! command -v $(GDB) >/dev/null 2>&1; then \
		echo "$(GDB) not found: installing gdb"; \
		if [ "$$(id -u)" -eq 0 ]; then SUDO=; \
		elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
		else echo "error: not root and no sudo; install gdb by hand (Debian: apt-get install gdb)" >&2; exit 1; fi; \
		if ! command -v apt-get >/dev/null 2>&1; then \
			echo "error: no apt-get; install gdb (with Python support) by hand" >&2; exit 1; fi; \
		$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y gdb \
			|| { echo "error: installing gdb failed" >&2; exit 1; }; \
	fi
	@$(GDB) -batch -nx -ex 'python print("ok")' 2>/dev/null | grep -qx ok \
		|| { echo "error: $(GDB) has no Python support, which kernel/gdb/plk.py needs; install Debian's gdb" >&2; exit 1; }

# `make bench` also measures mold when it is installed; this installs
# Debian's `mold` if it can, and otherwise says so and goes on.
ensure-mold:
	@if ! command -v mold >/dev/null 2>&1; then \
		if [ "$$(id -u)" -eq 0 ]; then SUDO=; \
		elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; \
		else SUDO=none; fi; \
		if [ "$$SUDO" != none ] && command -v apt-get >/dev/null 2>&1 \
			&& { $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y mold >/dev/null 2>&1 \
			|| { $$SUDO apt-get update >/dev/null 2>&1 \
			&& $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y mold >/dev/null 2>&1; }; }; then \
			echo "installed mold"; \
		else echo "note: mold is not installed and could not be installed; the bench leaves it out"; fi; \
	fi

# Module sizes (used bytes per class, symbols) against the committed
# baseline, bloat-o-meter style. Fails when a module's class grew by more
# than 5 % of its baseline bytes or 1 KiB, whichever is larger (README,
# "Size budget"); `make sizes-update` rewrites the baseline, to be committed
# with the change that grew the module.
SIZES_BASELINE := tests/sizes-baseline.json
sizes: image
	$(PRELINKER) sizes $(IMAGE) $(BUILD)/modules/*.o --baseline $(SIZES_BASELINE)

sizes-update: image
	$(PRELINKER) sizes $(IMAGE) $(BUILD)/modules/*.o --write-baseline $(SIZES_BASELINE)

# Scale images: N copies of the template module tests/scale-module (a PCI
# driver whose copies each probe one bus-0 slot; one in ten finds nothing),
# renamed in place by `bench scale-modules`, prelinked into a kernel built
# with class ranges and a module table sized for N (16 KiB of slot room and
# 1.5 KiB of table per module): build/scale/image-N.elf, with its plan.
N ?= 1000
SCALE_DIR := $(BUILD)/scale
SCALE_OBJ := $(SCALE_DIR)/scale_module.o
BENCH_BIN := $(TARGET_DIR)/release/bench

scale-module: prelinker
	$(CARGO) build --profile kernel --target $(TARGET) -p scale_module
	@mkdir -p $(SCALE_DIR)
	$(PRELINKER) extract $(call MODULE_LIB,scale_module) --output $(SCALE_OBJ)
	@builtin-modules/check-objects.sh -q $(SCALE_OBJ)

bench-bin: ensure-toolchain
	$(CARGO) build --release -p bench

scale-image: scale-module bench-bin
	@case '$(N)' in ''|*[!0-9]*|0) echo "error: N=$(N): expected a positive number of modules" >&2; exit 1;; esac
	PLK_MODULE_EXTRA_PAGES=$$(( $(N) / 128 )) PLK_MODTABLE_KIB=$$(( 256 + $(N) * 3 / 2 )) \
		$(CARGO) build --profile kernel --target $(TARGET) -p kernel
	cp $(KERNEL_OUT) $(SCALE_DIR)/kernel-$(N).elf
	$(BENCH_BIN) scale-modules $(SCALE_OBJ) $(N) $(SCALE_DIR)/m$(N)
	$(PRELINKER) link --kernel $(SCALE_DIR)/kernel-$(N).elf --output $(SCALE_DIR)/image-$(N).elf \
		--plan-json $(SCALE_DIR)/image-$(N).plan.json $(SCALE_DIR)/m$(N)/*.o

# The 100-module image the boot tests boot (tests/tests/scale.rs).
scale-test-image:
	@$(MAKE) --no-print-directory scale-image N=100

# Host crates (the workspace's default members) plus the boot tests, which
# boot $(IMAGE) under QEMU, and the bench crate's unit tests.
# PLK_REQUIRE_BUILD makes the tests that read build/ (the prelinker's goblin
# cross-check) fail rather than skip when something there is missing.
test: lint ensure-qemu ensure-gdb image preset-images test-image scale-test-image refusal-modules runtime-modules test-modules sizes fuzz-quick
	PLK_REQUIRE_BUILD=1 $(CARGO) test
	$(CARGO) test -p bench

# Mutation fuzzing of the prelinker's object reader and the kernel's module
# table parser (tests/fuzz): FUZZ_SECONDS each (make test runs 20 s each;
# make fuzz 300 s). A crash fails the run and keeps its input in
# tests/fuzz/crashes/, which later runs replay first.
FUZZ_SECONDS ?= 300
.PHONY: fuzz fuzz-quick
fuzz: image test-image
	$(CARGO) build --release -p fuzz-targets
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(TARGET_DIR)/release/fuzz_object_reader
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(TARGET_DIR)/release/fuzz_modtable

fuzz-quick:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

# Host unit tests of the module crates (driver logic against fake hardware);
# they are not default members, so a plain `cargo test` skips them.
MODULE_CRATES := $(sort $(patsubst builtin-modules/%/Cargo.toml,%,$(wildcard builtin-modules/*/Cargo.toml)))
test-modules: ensure-toolchain
	$(CARGO) test $(addprefix -p ,$(MODULE_CRATES))

fmt:
	$(CARGO) fmt --all

# Formatting and clippy, as `make test` checks them.
lint: ensure-toolchain fmt-check clippy

fmt-check:
	$(CARGO) fmt --all -- --check

# Host crates, then everything that builds for the kernel target: the
# kernel, the module API and every driver and fault-injection module.
clippy:
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets -p bench -- -D warnings
	$(CARGO) clippy --profile kernel --target $(TARGET) -p kernel -p module-api -p scale_module \
		$(addprefix -p ,$(MODULES) $(FAULT_MODULES) $(REFUSAL_MODULES) $(RUNTIME_MODULES)) -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(BUILD)

# The runtime loader's numbers (emulator time under TCG): load time per
# module, text bytes and mappings after loading 50 small modules, against
# page-rounded (Linux-style) allocations. The same test runs in make test.
.PHONY: bench-runtime
bench-runtime: ensure-qemu preset-images runtime-modules
	$(CARGO) test -p boot-tests --test runtime runtime_bench -- --nocapture

# Benchmarks: the prelinker against rust-lld, mold and the I/O floor; the
# module phase under the emulator for the real image and the scale images
# of BENCH_SCALE_BOOT modules; the native replay; the layout per preset and
# policy. Writes bench/results/latest.{md,json}; see docs/benchmarks.md.
BENCH_SCALE_BOOT ?= 15,100,1000
export BENCH_SCALE_BOOT
comma := ,
.PHONY: bench
# The native replay runs the kernel's checksum and relocation code on the
# host. The kernel target has no SIMD, so its code is scalar; the replay is
# built without LLVM's auto-vectorisers (in a target directory of its own,
# so the other host builds keep their flags) to run the same scalar code.
REPLAY_TARGET_DIR := $(TARGET_DIR)/replay
REPLAY_RUSTFLAGS := -C llvm-args=-vectorize-loops=false -C llvm-args=-vectorize-slp=false

bench: ensure-toolchain ensure-qemu ensure-mold image preset-images bench-bin
	@for n in $(subst $(comma), ,$(BENCH_SCALE_BOOT)); do \
		$(MAKE) --no-print-directory scale-image N=$$n || exit 1; \
	done
	RUSTFLAGS="$(REPLAY_RUSTFLAGS)" $(CARGO) build --release -p prelinker --example relocate_replay \
		--target-dir $(REPLAY_TARGET_DIR)
	$(BENCH_BIN)

# The previous layout's figures (bench/results/layout-v1.json), which the
# bench shows beside the current ones: the tree of LAYOUT_V1_COMMIT is
# exported to build/layout-v1, built there with its own Makefile, and its
# image booted on every preset under every policy it had.
LAYOUT_V1_COMMIT := bb887f3
layout-v1: bench-bin ensure-qemu
	rm -rf $(BUILD)/layout-v1 && mkdir -p $(BUILD)/layout-v1
	git archive $(LAYOUT_V1_COMMIT) | tar -x -C $(BUILD)/layout-v1
	$(MAKE) -C $(BUILD)/layout-v1 image CARGO_TARGET_DIR=$(abspath $(BUILD)/layout-v1/target)
	$(BENCH_BIN) layout-v1 $(BUILD)/layout-v1 $(LAYOUT_V1_COMMIT) bench/results/layout-v1.json
