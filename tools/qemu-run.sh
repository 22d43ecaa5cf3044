#!/usr/bin/env bash
# Boot a Mica image on QEMU virt through Debian's OpenSBI (fw_dynamic).
# Usage: tools/qemu-run.sh IMAGE [extra QEMU arguments]; Ctrl-A X quits.
set -eu
image=$1
shift
exec qemu-system-riscv64 -machine virt -smp "${SMP:-1}" -m "${MEM:-128M}" -nographic \
	-bios /usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin \
	-kernel "$image" "$@"
