#!/usr/bin/env bash
# tools/dump-dtbs.sh OUTDIR
#
# Collect the device trees the host tests read: QEMU's own trees (dumped with
# `-machine ...,dumpdtb=`), the VisionFive 2 tree kept in tests/data, and variants
# of them edited with fdtput/dtc to reach cases no real board gives us.
#
# A blob is rebuilt only when it is missing or older than this script, QEMU or its
# source, so a second run changes nothing (QEMU writes a fresh random rng-seed into
# every dump; rebuilding for no reason would make the trees differ run to run).
# Set FORCE=1 to rebuild everything. Each blob is written to a temporary name and
# renamed into place, so an interrupted run never leaves a half-written tree.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
out=$1
here=$(cd "$(dirname "$0")/.." && pwd)
script="$here/tools/dump-dtbs.sh"
vf2_src="$here/tests/data/jh7110-starfive-visionfive-2-v1.3b.dtb"

for tool in qemu-system-riscv64 fdtput fdtget dtc; do
	if ! command -v "$tool" >/dev/null; then
		echo "dump-dtbs: $tool not found (tools/deps.sh installs it)" >&2
		exit 1
	fi
done
qemu=$(command -v qemu-system-riscv64)

mkdir -p "$out"
tmp=$(mktemp -d "$out/.dump.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# stale TARGET DEP...: does TARGET need rebuilding?
stale() {
	local target=$1
	shift
	[ "${FORCE:-0}" = 1 ] && return 0
	[ -s "$target" ] || return 0
	local dep
	for dep in "$script" "$@"; do
		[ "$dep" -nt "$target" ] && return 0
	done
	return 1
}

# qemu_dump NAME QEMU-ARGS...: the first argument after NAME is the machine type.
# dumpdtb makes QEMU exit right after building the machine; `timeout` makes sure a
# QEMU that does not understand it cannot linger. No firmware or kernel is loaded:
# the tree does not depend on them (OpenSBI edits its copy only when it runs).
qemu_dump() {
	local name=$1 machine=$2
	shift 2
	stale "$out/$name" "$qemu" || return 0
	timeout -k 2 20 "$qemu" -machine "$machine,dumpdtb=$tmp/$name" -bios none \
		-display none -serial none -monitor none -nodefaults "$@" \
		</dev/null >"$tmp/$name.log" 2>&1 || {
		cat "$tmp/$name.log" >&2
		echo "dump-dtbs: qemu failed for $name" >&2
		exit 1
	}
	mv -f "$tmp/$name" "$out/$name"
	echo "dump-dtbs: $out/$name"
}

# variant NAME BASE COMMAND...: copy BASE to a temporary file, run COMMAND with every
# argument that is exactly {} replaced by that file's name, and install it as NAME.
variant() {
	local name=$1 base=$2
	shift 2
	stale "$out/$name" "$out/$base" || return 0
	local f="$tmp/$name" arg args=()
	cp "$out/$base" "$f"
	chmod 644 "$f"
	for arg in "$@"; do
		[ "$arg" = "{}" ] && arg=$f
		args+=("$arg")
	done
	"${args[@]}"
	mv -f "$f" "$out/$name"
	echo "dump-dtbs: $out/$name"
}

qemu_dump virt-smp1-128M.dtb virt -smp 1 -m 128M
qemu_dump virt-smp4-4G.dtb virt -smp 4 -m 4G
qemu_dump sifive_u-smp5.dtb sifive_u -smp 5 -m 1G
qemu_dump virt-nosstc.dtb virt -cpu rv64,sstc=false,h=false -smp 1 -m 256M

if stale "$out/visionfive2.dtb" "$vf2_src"; then
	cp "$vf2_src" "$tmp/visionfive2.dtb"
	chmod 644 "$tmp/visionfive2.dtb"
	mv -f "$tmp/visionfive2.dtb" "$out/visionfive2.dtb"
	echo "dump-dtbs: $out/visionfive2.dtb"
fi

# The stock U-Boot rewrites the memory size from the board EEPROM: the 8 GiB board.
variant visionfive2-8G.dtb visionfive2.dtb \
	fdtput -t x {} /memory@40000000 reg 0 0x40000000 2 0

# Two RAM banks in one reg, the form U-Boot's fdt_fixup_memory_banks() writes: 4 GiB at
# the usual base and 4 GiB more at 0x2_4000_0000, still inside the JH7110's DDR window
# (0x4000_0000..0x4_4000_0000), with a hole where an 8 GiB board would have its top half.
variant visionfive2-2banks.dtb visionfive2.dtb \
	fdtput -t x {} /memory@40000000 reg 0 0x40000000 1 0 2 0x40000000 1 0

# The S7 monitor core claiming an MMU must still be skipped: it is disabled.
variant visionfive2-s7-sv39.dtb visionfive2.dtb \
	fdtput -t s {} /cpus/cpu@0 mmu-type riscv,sv39

# stdout-path naming a UART Mica has no driver for: the console falls back to SBI.
acme_uart() {
	fdtput -c "$1" /soc/serial@12340000
	fdtput -t s "$1" /soc/serial@12340000 compatible acme,uart7
	fdtput -t x "$1" /soc/serial@12340000 reg 0 0x12340000 0 0x1000
	fdtput -t s "$1" /chosen stdout-path /soc/serial@12340000:9600
}
variant visionfive2-acme-uart.dtb visionfive2.dtb acme_uart {}

# No stdout-path at all: the console is the serial0 alias.
variant visionfive2-no-stdout.dtb visionfive2.dtb \
	fdtput -d {} /chosen stdout-path

# stdout-path naming a node that does not exist: SBI, with the path recorded.
variant virt-missing-uart.dtb virt-smp1-128M.dtb \
	fdtput -t s {} /chosen stdout-path /soc/serial@20000000:38400

# What OpenSBI adds to QEMU virt's tree before the kernel sees it (as printed by
# U-Boot running under Debian's fw_jump): its own firmware region.
opensbi_region() {
	fdtput -c "$1" /reserved-memory
	fdtput -t x "$1" /reserved-memory "#address-cells" 2
	fdtput -t x "$1" /reserved-memory "#size-cells" 2
	fdtput -t x "$1" /reserved-memory ranges
	fdtput -c "$1" /reserved-memory/mmode_resv0@80000000
	fdtput -t x "$1" /reserved-memory/mmode_resv0@80000000 reg 0 0x80000000 0 0x80000
}
variant virt-opensbi.dtb virt-smp1-128M.dtb opensbi_region {}

# Reservations from both sources: two memreserve entries (fdtput cannot add those,
# so the tree goes through dtc), and a /reserved-memory with 1-cell addresses and
# sizes, which must be decoded with its own cell counts, not the root's.
if stale "$out/virt-reserved.dtb" "$out/virt-smp1-128M.dtb"; then
	dtc -q -I dtb -O dts -o "$tmp/virt-reserved.dts" "$out/virt-smp1-128M.dtb"
	{
		echo '/dts-v1/;'
		echo '/memreserve/ 0x87f00000 0x00100000;'
		echo '/memreserve/ 0x80000000 0x00020000;'
		sed '1d' "$tmp/virt-reserved.dts"
		cat <<-'EOF'
		/ {
			reserved-memory {
				#address-cells = <1>;
				#size-cells = <1>;
				ranges;
				fw@80020000 { reg = <0x80020000 0x20000>; no-map; };
				shm@84000000 { reg = <0x84000000 0x1000 0x84010000 0x2000>; };
				pool { size = <0x100000>; alignment = <0x1000>; };
			};
		};
		EOF
	} >"$tmp/virt-reserved-in.dts"
	dtc -q -I dts -O dtb -o "$tmp/virt-reserved.dtb" "$tmp/virt-reserved-in.dts"
	mv -f "$tmp/virt-reserved.dtb" "$out/virt-reserved.dtb"
	echo "dump-dtbs: $out/virt-reserved.dtb"
fi
