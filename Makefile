# Mica top-level build. Everything lands in $(BUILD); nothing is written into the tree.
# `make run` and `make test` install missing Debian packages first (tools/deps.sh).

BUILD    ?= build
PLATFORM ?= qemu-virt
CROSS    ?= riscv64-unknown-elf-
HOSTCC   ?= gcc
FUZZCC   ?= clang
PYTHON   ?= python3
HZ       ?= 100
# text_offset written into the image header: where booti places the image above RAM base.
TEXT_OFFSET ?= 0x200000
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

# `make V=1` shows whole command lines.
ifeq ($(V),1)
Q :=
quiet = @true
else
Q := @
quiet = @printf '  %-7s %s\n'
endif

CC      := $(CROSS)gcc
OBJCOPY := $(CROSS)objcopy
OBJDUMP := $(CROSS)objdump

PICOLIBC := /usr/lib/picolibc/riscv64-unknown-elf
PICOLIBC_LIB := $(PICOLIBC)/lib/release/rv64imac/lp64/libc.a
LIBGCC := $(shell $(CROSS)gcc -march=rv64imac -mabi=lp64 -print-libgcc-file-name)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
INCLUDES := -Iinclude -I.

# The kernel: freestanding, integer-only (no FP registers), PC-relative code model.
KCFLAGS := -std=c11 $(WARN) $(INCLUDES) -isystem $(PICOLIBC)/include \
	-ffreestanding -fno-common -fno-builtin-printf -fno-stack-protector -fno-pie \
	-march=rv64imac_zicsr_zifencei -mabi=lp64 -mcmodel=medany -mno-relax \
	-O2 -g -fno-omit-frame-pointer -MMD -MP \
	-DMICA_KERNEL -DMICA_DEBUG -DMICA_HZ=$(HZ) -DMICA_TEXT_OFFSET=$(TEXT_OFFSET) \
	-DMICA_VERSION=\"$(VERSION)\"
KLDFLAGS := -nostdlib -static -no-pie -Wl,--no-relax -Wl,-T,arch/riscv64/kernel.ld \
	-Wl,--build-id=none -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack

KERNEL_SRCS := $(wildcard boot/*.S boot/*.c arch/riscv64/*.S arch/riscv64/*.c sbi/*.c kern/*.c ipc/*.c lib/*.c mm/*.c)
KERNEL_OBJS := $(patsubst %,$(BUILD)/$(PLATFORM)/obj/%.o,$(KERNEL_SRCS))
KERNEL_ELF  := $(BUILD)/$(PLATFORM)/mica.elf
KERNEL_IMG  := $(BUILD)/$(PLATFORM)/Image

# User programs: picolibc, integer-only like the kernel, linked at 0x10000.
USER_CFLAGS := -std=c11 $(WARN) $(INCLUDES) -isystem $(PICOLIBC)/include \
	-march=rv64imac_zicsr_zifencei -mabi=lp64 -mcmodel=medany -fno-pie -fno-stack-protector \
	-fno-common -O2 -g -fno-omit-frame-pointer -MMD -MP -DMICA_USER
USER_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,user/user.ld -Wl,--build-id=none \
	-Wl,-z,max-page-size=4096 -Wl,-z,noexecstack
USER_LIB_SRCS := $(wildcard user/lib/*.c user/lib/*.S) lib/elf.c
USER_LIB_OBJS := $(patsubst %,$(BUILD)/user/obj/%.o,$(USER_LIB_SRCS))
USER_PROGS := root child mmtest
USER_ELFS := $(patsubst %,$(BUILD)/user/%.elf,$(USER_PROGS))

# Host: the portable layers (mm/, lib/) with sanitizers, for cmocka tests.
# arch/riscv64/pt.c is the page-table core: portable so host tests can walk it.
PORTABLE_SRCS := $(wildcard mm/*.c lib/*.c) arch/riscv64/pt.c
HOST_CFLAGS := -std=c11 $(WARN) $(INCLUDES) -g -O1 -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=all -DMICA_TEST -MMD -MP
HOST_LIB_SRCS := $(wildcard tests/host/lib/*.c)
# The memory server's logic (not its IPC loop) runs on the host too.
HOST_SERVER_SRCS := server/mm_core.c server/mm_pagetab.c
HOST_OBJS := $(patsubst %.c,$(BUILD)/host/obj/%.o,$(PORTABLE_SRCS) $(HOST_LIB_SRCS) \
	$(HOST_SERVER_SRCS))
HOST_TESTS := $(patsubst tests/host/%.c,$(BUILD)/host/%,$(wildcard tests/host/test_*.c))

FUZZ_CFLAGS := -std=c11 $(INCLUDES) -g -O1 -fsanitize=fuzzer,address,undefined -DMICA_TEST -DMICA_FUZZ
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TIME ?= 600

BENCH_CFLAGS := -std=c11 $(WARN) $(INCLUDES) -g -O2 -DMICA_BENCH
BENCH_TARGETS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(wildcard tests/bench/bench_*.c))

.PHONY: all kernel user host-tests fuzz-targets run test gdb clean format deps \
	compile_commands.json check-portable fuzz bench bench-host dtbs uboot-image \
	sdcard sdcard-rehearsal

all: kernel

kernel: $(KERNEL_IMG) $(KERNEL_ELF)

deps:
	@tools/deps.sh

$(BUILD)/$(PLATFORM)/obj/%.S.o: %.S
	@mkdir -p $(@D)
	$(quiet) AS $<
	$(Q)$(CC) $(KCFLAGS) -D__ASSEMBLY__ -c -o $@ $<

$(BUILD)/$(PLATFORM)/obj/%.c.o: %.c
	@mkdir -p $(@D)
	$(quiet) CC $<
	$(Q)$(CC) $(KCFLAGS) -c -o $@ $<

# Runs at the physical load address before paging: no absolute addresses.
$(BUILD)/$(PLATFORM)/obj/boot/early_pt.c.o: KCFLAGS += -fno-jump-tables

$(KERNEL_ELF): $(KERNEL_OBJS) arch/riscv64/kernel.ld
	$(quiet) LD $@
	$(Q)$(CC) $(KCFLAGS) $(KLDFLAGS) -o $@ $(KERNEL_OBJS) $(PICOLIBC_LIB) $(LIBGCC)
	$(Q)tools/check-image.sh $@

$(KERNEL_IMG): $(KERNEL_ELF)
	$(quiet) IMAGE $@
	$(Q)$(OBJCOPY) -O binary $< $@

$(BUILD)/user/obj/%.c.o: %.c
	@mkdir -p $(@D)
	$(quiet) UCC $<
	$(Q)$(CC) $(USER_CFLAGS) -c -o $@ $<

$(BUILD)/user/obj/%.S.o: %.S
	@mkdir -p $(@D)
	$(quiet) UAS $<
	$(Q)$(CC) $(USER_CFLAGS) -D__ASSEMBLY__ -c -o $@ $<

$(BUILD)/user/%.elf: $(BUILD)/user/obj/user/tests/%.c.o $(USER_LIB_OBJS) user/user.ld
	$(quiet) ULD $@
	$(Q)$(CC) $(USER_CFLAGS) $(USER_LDFLAGS) -o $@ $< $(USER_EXTRA_$*) $(USER_LIB_OBJS) \
		$(PICOLIBC_LIB) $(LIBGCC)

# The root task is the memory server (server/, mm/) and carries the kernel
# tests and the benchmarks; every other program is a client of the server.
USER_EXTRA_root := $(patsubst %,$(BUILD)/user/obj/%.o,user/tests/bench.c user/tests/smp_test.c \
	$(wildcard server/*.c) mm/vm_map.c mm/frame.c)
# The server's maps check every invariant after every change (vm_map_check).
$(BUILD)/user/obj/mm/vm_map.c.o: USER_CFLAGS += -DMICA_TEST
USER_CLIENT_OBJS := $(patsubst %,$(BUILD)/user/obj/%.o,$(wildcard user/client/*.c))
USER_EXTRA_child := $(USER_CLIENT_OBJS)
USER_EXTRA_mmtest := $(USER_CLIENT_OBJS) $(BUILD)/user/obj/user/tests/mm_shoot.c.o
$(BUILD)/user/root.elf: $(USER_EXTRA_root)
$(BUILD)/user/child.elf: $(USER_EXTRA_child)
$(BUILD)/user/mmtest.elf: $(USER_EXTRA_mmtest)

user: $(USER_ELFS)

# The boot modules are the user ELFs, pulled in with .incbin.
$(BUILD)/$(PLATFORM)/obj/boot/modules.S.o: KCFLAGS += -Wa,-I$(BUILD)/user
$(BUILD)/$(PLATFORM)/obj/boot/modules.S.o: $(USER_ELFS)

# Compile the portable layers with the kernel's flags: proves they stay freestanding.
check-portable: $(patsubst %,$(BUILD)/$(PLATFORM)/obj/%.o,$(PORTABLE_SRCS))

$(BUILD)/host/obj/%.o: %.c
	@mkdir -p $(@D)
	$(quiet) HOSTCC $<
	$(Q)$(HOSTCC) $(HOST_CFLAGS) -c -o $@ $<

$(BUILD)/host/test_%: tests/host/test_%.c $(HOST_OBJS)
	@mkdir -p $(@D)
	$(quiet) HOSTLD $@
	$(Q)$(HOSTCC) $(HOST_CFLAGS) -o $@ $< $(HOST_OBJS) -lcmocka -lfdt

host-tests: $(HOST_TESTS)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(PORTABLE_SRCS) $(HOST_LIB_SRCS) $(HOST_SERVER_SRCS)
	@mkdir -p $(@D)
	$(quiet) FUZZ $@
	$(Q)$(FUZZCC) $(FUZZ_CFLAGS) -o $@ $< $(PORTABLE_SRCS) $(HOST_LIB_SRCS) $(HOST_SERVER_SRCS)

fuzz-targets: $(FUZZ_TARGETS)

$(BUILD)/bench/bench_%: tests/bench/bench_%.c $(PORTABLE_SRCS) $(HOST_LIB_SRCS)
	@mkdir -p $(@D)
	$(quiet) BENCH $@
	$(Q)$(HOSTCC) $(BENCH_CFLAGS) -o $@ $< $(PORTABLE_SRCS) $(HOST_LIB_SRCS)

# QEMU's own device trees, dumped for the host tests of the DT reader and discovery.
dtbs:
	@tools/dump-dtbs.sh $(BUILD)/dtb

# A second kernel whose header asks booti to place it 64 MiB above RAM base.
uboot-image:
	$(Q)$(MAKE) --no-print-directory PLATFORM=qemu-virt-reloc TEXT_OFFSET=0x4000000 kernel

# The VisionFive 2 SD card (docs/VISIONFIVE2.md), and the cards `make test` boots
# under QEMU through Debian's U-Boot to rehearse it: one with no fdt line (U-Boot
# hands over QEMU's tree) and one that names a tree QEMU dumped for -smp 1 -m 512M,
# which the uboot-sdcard-* boots in tests/qemu/qemu_boot.py that use it must match.
VF2_DIR := $(BUILD)/visionfive2
VF2_DTB := tests/data/jh7110-starfive-visionfive-2-v1.3b.dtb
VF2_QEMU_DTB := $(VF2_DIR)/qemu-virt-smp1-512M.dtb

sdcard: deps
	$(Q)$(MAKE) --no-print-directory $(VF2_DIR)/sdcard.img

sdcard-rehearsal: $(VF2_DIR)/sdcard-qemu.img $(VF2_DIR)/sdcard-qemu-fdt.img

$(VF2_DIR)/sdcard.img: $(KERNEL_IMG) $(VF2_DTB) tools/mksdcard.sh
	$(quiet) SDCARD $@
	$(Q)tools/mksdcard.sh --image $(KERNEL_IMG) --dtb $(VF2_DTB) --out $@ >/dev/null

$(VF2_DIR)/sdcard-qemu.img: $(KERNEL_IMG) $(VF2_DTB) tools/mksdcard.sh
	$(quiet) SDCARD $@
	$(Q)tools/mksdcard.sh --image $(KERNEL_IMG) --dtb $(VF2_DTB) --no-fdt --out $@ >/dev/null

$(VF2_DIR)/sdcard-qemu-fdt.img: $(KERNEL_IMG) $(VF2_QEMU_DTB) tools/mksdcard.sh
	$(quiet) SDCARD $@
	$(Q)tools/mksdcard.sh --image $(KERNEL_IMG) --dtb $(VF2_QEMU_DTB) --out $@ >/dev/null

$(VF2_QEMU_DTB):
	@mkdir -p $(@D)
	$(quiet) DUMPDTB $@
	$(Q)qemu-system-riscv64 -machine virt,dumpdtb=$@.tmp -smp 1 -m 512M -bios none \
		-display none -serial none -monitor none -nodefaults >/dev/null 2>&1; \
		dtc -q -I dtb -O dtb -o $@ $@.tmp && rm -f $@.tmp

run: deps
	$(Q)$(MAKE) --no-print-directory kernel
	tools/qemu-run.sh $(KERNEL_IMG) -append mica.demo

# QEMU waits for gdb on :1234; it goes when gdb does.
gdb: kernel
	tools/qemu-run.sh $(KERNEL_IMG) -S -s & qemu=$$!; \
	gdb-multiarch -q -ex 'target remote :1234' $(KERNEL_ELF); kill $$qemu 2>/dev/null || true

test: deps
	$(Q)$(MAKE) --no-print-directory kernel uboot-image host-tests fuzz-targets dtbs \
		sdcard-rehearsal
	$(PYTHON) tests/run_all.py --build $(BUILD)

fuzz: fuzz-targets
	@for f in $(FUZZ_TARGETS); do \
		mkdir -p $(BUILD)/fuzz/corpus/$$(basename $$f); \
		echo "== $$f for $(FUZZ_TIME)s"; \
		$$f -max_total_time=$(FUZZ_TIME) -max_len=4096 -print_final_stats=1 $(BUILD)/fuzz/corpus/$$(basename $$f) || exit 1; \
	done

bench-host: $(BENCH_TARGETS)
	@for b in $(BENCH_TARGETS); do echo "== $$b"; $$b || exit 1; done

bench: deps
	$(Q)$(MAKE) --no-print-directory kernel
	$(PYTHON) tools/bench.py --build $(BUILD)
	$(Q)$(MAKE) --no-print-directory bench-host

compile_commands.json:
	$(MAKE) clean
	bear --output compile_commands.json -- $(MAKE) kernel host-tests

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Keep intermediate objects (user program objects are built through pattern chains).
.SECONDARY:
