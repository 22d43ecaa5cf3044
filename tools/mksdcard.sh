#!/usr/bin/env bash
# tools/mksdcard.sh [options]
#
# Build a disk image for the StarFive VisionFive 2 that its U-Boot boots Mica from,
# without root and without loop devices: the partition table is written into a plain
# file with sfdisk, the FAT file system is made in a second file with mkfs.vfat, filled
# with mtools, and copied into place with dd.
#
# Layout (512-byte sectors; the same numbering as StarFive's own images):
#   1  4096-8191    2 MiB  type 2E54B353-...  "spl"    empty unless --spl is given
#   2  8192-16383   4 MiB  type 5B193300-...  "uboot"  empty unless --payload is given
#   3  16384-...   32 MiB  EFI system, FAT16  "boot"   marked bootable (legacy BIOS attribute)
# Partition 3 holds:
#   /Image                    the kernel (RISC-V Linux image header, booti loads it)
#   /<dtb name>               the device tree (default: the VisionFive 2 v1.3b tree)
#   /extlinux/extlinux.conf   for U-Boot's distro boot (sysboot)
#   /vf2_uEnv.txt             for StarFive's U-Boot, which imports it and runs boot2
#
# Partitions 1 and 2 are where the board's boot ROM looks for SPL and U-Boot when the
# boot-mode switches select the SD card. Normally the board boots its firmware from
# the QSPI flash instead and only reads partition 3, so they are left zero-filled;
# --spl and --payload fill them with StarFive's firmware files for SD-card boot mode.
#
# The output is the same byte for byte for the same inputs: fixed disk and partition
# GUIDs, fixed FAT volume id, and every FAT time stamp taken from SOURCE_DATE_EPOCH
# (a fixed date when it is not set).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
image="$here/build/qemu-virt/Image"
dtb="$here/tests/data/jh7110-starfive-visionfive-2-v1.3b.dtb"
out="$here/build/visionfive2/sdcard.img"
use_fdt=1
spl=
payload=

usage() { # usage STATUS: help on stderr, or stdout for --help
	local fd=2
	[ "$1" = 0 ] && fd=1
	cat >&$fd <<-EOF
	usage: $0 [--image FILE] [--dtb FILE] [--no-fdt] [--out FILE]
	          [--spl FILE] [--payload FILE]
	  --image FILE    kernel image to install (default: build/qemu-virt/Image)
	  --dtb FILE      device tree to install and boot with (default: the VisionFive 2
	                  v1.3b tree in tests/data)
	  --no-fdt        boot with U-Boot's own tree (\${fdtcontroladdr}) instead: no fdt
	                  line in extlinux.conf, and vf2_uEnv.txt copies U-Boot's tree
	  --out FILE      where to write the disk image (default: build/visionfive2/sdcard.img)
	  --spl FILE      StarFive SPL (u-boot-spl.bin.normal.out) for partition 1
	  --payload FILE  StarFive OpenSBI+U-Boot (visionfive2_fw_payload.img) for partition 2
	EOF
	exit "$1"
}

while [ $# -gt 0 ]; do
	case $1 in
	--image) [ $# -ge 2 ] || usage 2; image=$2; shift 2 ;;
	--dtb) [ $# -ge 2 ] || usage 2; dtb=$2; shift 2 ;;
	--no-fdt) use_fdt=0; shift ;;
	--out) [ $# -ge 2 ] || usage 2; out=$2; shift 2 ;;
	--spl) [ $# -ge 2 ] || usage 2; spl=$2; shift 2 ;;
	--payload) [ $# -ge 2 ] || usage 2; payload=$2; shift 2 ;;
	-h | --help) usage 0 ;;
	*) echo "mksdcard: unknown argument: $1" >&2; usage 2 ;;
	esac
done

die() {
	echo "mksdcard: $*" >&2
	exit 1
}

# sfdisk and mkfs.vfat live in /sbin, which is not on every user's PATH.
PATH=$PATH:/usr/sbin:/sbin
for tool in sfdisk mkfs.vfat mcopy mmd dd; do
	command -v "$tool" >/dev/null ||
		die "$tool not found (Debian packages fdisk, dosfstools, mtools; tools/deps.sh installs them)"
done

for f in "$image" "$dtb" ${spl:+"$spl"} ${payload:+"$payload"}; do
	{ [ -f "$f" ] && [ -r "$f" ]; } || die "cannot read $f"
done
# The image must carry the RISC-V image header, or booti refuses it with a vague error.
[ "$(dd if="$image" bs=1 skip=48 count=5 status=none)" = RISCV ] ||
	die "$image has no RISC-V image header (magic \"RISCV\" at offset 48)"
[ "$(od -An -tx1 -N4 "$dtb" | tr -d ' \n')" = d00dfeed ] ||
	die "$dtb is not a flattened device tree (no d00dfeed magic)"
dtb_name=$(basename "$dtb")
case $dtb_name in
*[!A-Za-z0-9._-]*) die "device tree file name '$dtb_name' has characters U-Boot scripts would mangle" ;;
esac

# Geometry, in 512-byte sectors.
spl_start=4096 spl_sectors=4096
uboot_start=8192 uboot_sectors=8192
boot_start=16384 boot_sectors=65536
# Room after partition 3 for the backup GPT (33 sectors), rounded to 1 MiB.
disk_sectors=$((boot_start + boot_sectors + 2048))

fits() { # fits FILE SECTORS
	[ "$(stat -c %s "$1")" -le $(($2 * 512)) ] || die "$1 does not fit in $(($2 / 2)) KiB"
}
[ -z "$spl" ] || fits "$spl" $spl_sectors
[ -z "$payload" ] || fits "$payload" $uboot_sectors
[ "$(($(stat -c %s "$image") + $(stat -c %s "$dtb")))" -lt $((boot_sectors * 512 - 1048576)) ] ||
	die "the kernel and device tree do not fit in the $((boot_sectors / 2048)) MiB boot partition"

mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$(dirname "$out")/.mksdcard.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- The files for partition 3 ---------------------------------------------------
mkdir -p "$tmp/files/extlinux"
cp "$image" "$tmp/files/Image"
cp "$dtb" "$tmp/files/$dtb_name"

{
	echo "# Mica for the StarFive VisionFive 2, written by tools/mksdcard.sh."
	echo "# U-Boot's distro boot finds this file on partition 3 and runs sysboot on it."
	echo "default mica"
	echo ""
	echo "label mica"
	echo "	kernel /Image"
	if [ $use_fdt = 1 ]; then
		echo "	fdt /$dtb_name"
	else
		echo "	# No fdt line: U-Boot hands over its own tree (\$fdt_addr or \$fdtcontroladdr)."
	fi
} >"$tmp/files/extlinux/extlinux.conf"

# StarFive's U-Boot loads vf2_uEnv.txt from partition 3 of the card, imports it with
# "env import -t" and runs boot2, before it tries extlinux.conf. This path also
# writes the RAM size the firmware measured (memory_addr/memory_size, set by the
# board code) into the tree; extlinux cannot. mica_if is "mmc" on the board and is
# only overridden by the QEMU rehearsal (virtio).
if [ $use_fdt = 1 ]; then
	load_fdt="fatload \${mica_if} \${devnum}:3 \${fdt_addr_r} /$dtb_name"
else
	load_fdt="fdt move \${fdtcontroladdr} \${fdt_addr_r}"
fi
{
	echo "# Mica for the StarFive VisionFive 2, written by tools/mksdcard.sh."
	echo "# StarFive's U-Boot imports this file from partition 3 and runs boot2."
	echo "mica_if=mmc"
	echo "mica_load_fdt=$load_fdt"
	echo "mica_fix_mem=fdt addr \${fdt_addr_r}; fdt resize 0x1000; if test -n \"\${memory_size}\"; then echo Mica: RAM size 0x\${memory_size} at 0x\${memory_addr} from the firmware; fdt memory \${memory_addr} \${memory_size}; fi"
	echo "boot2=echo Mica: booting /Image from \${mica_if} \${devnum}:3 via vf2_uEnv.txt; if fatload \${mica_if} \${devnum}:3 \${kernel_addr_r} /Image && run mica_load_fdt; then run mica_fix_mem; booti \${kernel_addr_r} - \${fdt_addr_r}; fi"
} >"$tmp/files/vf2_uEnv.txt"

# --- Partition 3: a FAT file system in a file of its own -------------------------
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1704067200} # 2024-01-01 00:00 UTC
export TZ=UTC MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null
touch -h -d "@$SOURCE_DATE_EPOCH" "$tmp/files" "$tmp/files"/* "$tmp/files"/*/*
# --invariant fixes the volume id and the label's time stamp; -h records where the
# partition starts, as a FAT on a partitioned disk should.
mkfs.vfat -C -F 16 -n MICA --invariant -h $boot_start "$tmp/boot.fat" $((boot_sectors / 2)) \
	>"$tmp/mkfs.log" 2>&1 || { cat "$tmp/mkfs.log" >&2; die "mkfs.vfat failed"; }
mmd -i "$tmp/boot.fat" ::/extlinux
# Fixed order, so the directory entries land in the same slots every time.
for f in Image "$dtb_name" vf2_uEnv.txt extlinux/extlinux.conf; do
	mcopy -m -o -i "$tmp/boot.fat" "$tmp/files/$f" "::/$f"
done

# --- The disk: GPT, then the partitions copied in --------------------------------
rm -f "$tmp/disk.img"
truncate -s $((disk_sectors * 512)) "$tmp/disk.img"
sfdisk --quiet --no-reread --no-tell-kernel "$tmp/disk.img" >"$tmp/sfdisk.log" 2>&1 <<-EOF || { cat "$tmp/sfdisk.log" >&2; die "sfdisk failed"; }
	label: gpt
	label-id: 4D494341-0000-4000-8000-564632534443
	first-lba: 34
	sector-size: 512

	start=$spl_start, size=$spl_sectors, type=2E54B353-1271-4842-806F-E436D6AF6985, uuid=4D494341-0001-4000-8000-564632534443, name="spl"
	start=$uboot_start, size=$uboot_sectors, type=5B193300-FC78-40CD-8002-E86C45580B47, uuid=4D494341-0002-4000-8000-564632534443, name="uboot"
	start=$boot_start, size=$boot_sectors, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=4D494341-0003-4000-8000-564632534443, name="boot", attrs="LegacyBIOSBootable"
EOF
dd if="$tmp/boot.fat" of="$tmp/disk.img" bs=512 seek=$boot_start conv=notrunc,sparse status=none
[ -z "$spl" ] || dd if="$spl" of="$tmp/disk.img" bs=512 seek=$spl_start conv=notrunc,sparse status=none
[ -z "$payload" ] || dd if="$payload" of="$tmp/disk.img" bs=512 seek=$uboot_start conv=notrunc,sparse status=none

mv -f "$tmp/disk.img" "$out"
echo "mksdcard: $out ($((disk_sectors / 2048)) MiB; boot partition 3: Image, $dtb_name, extlinux/extlinux.conf$([ $use_fdt = 1 ] || echo ' without fdt line'), vf2_uEnv.txt)"
