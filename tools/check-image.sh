#!/usr/bin/env bash
# Check the RISC-V Linux image header of a freshly linked kernel ELF, so a
# broken header fails the build instead of a boot on the board.
set -eu
elf=$1
nm=${CROSS:-riscv64-unknown-elf-}nm
sym() { "$nm" "$elf" | awk -v s="$1" '$3 == s { print $1 }'; }
start=$((16#$(sym _start)))
end=$((16#$(sym _end)))
size=$((16#$(sym mica_image_size)))
if [ $((end - start)) -ne "$size" ]; then
	echo "check-image: image_size 0x$(printf %x "$size") != _end - _start" >&2
	exit 1
fi
if [ $((start & 0x1fffff)) -ne 0 ]; then
	echo "check-image: link address not 2 MiB aligned" >&2
	exit 1
fi
