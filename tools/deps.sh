#!/usr/bin/env bash
# Install the Debian packages that building, running and testing Mica need.
# Only missing packages are installed; `apt-get update` runs at most once.
# Without root, print the exact command to run instead of failing obscurely.
set -eu

packages=(
	make
	gcc
	clang
	gcc-riscv64-unknown-elf
	picolibc-riscv64-unknown-elf
	opensbi
	qemu-system-misc
	u-boot-qemu
	device-tree-compiler
	libcmocka-dev
	libfdt-dev
	gdb-multiarch
	valgrind
	mtools
	dosfstools
	fdisk
	python3
	bear
)

# libFuzzer and clang's sanitizer runtimes are a separate, version-numbered
# package that clang only recommends: name the one matching the clang on offer.
# (On a machine whose package lists are still empty this finds nothing; it is
# asked again after apt-get update below.)
clang_rt() {
	apt-cache depends clang 2>/dev/null |
		sed -n 's/.*Depends: clang-\([0-9][0-9]*\)$/libclang-rt-\1-dev/p' | head -n 1
}
rt=$(clang_rt)
[ -n "$rt" ] && packages+=("$rt")

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
	echo "deps.sh: run as root:  $cmd" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
apt-get update -q
if [ -z "$rt" ]; then
	rt=$(clang_rt)
	[ -n "$rt" ] && missing+=("$rt")
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
