#!/usr/bin/env python3
"""Run Mica's in-QEMU benchmarks and print them as a table.

QEMU runs with -icount shift=0,align=off,sleep=off, so the guest's cycle
counter advances exactly once per instruction: the figures are instruction
counts, identical from run to run and independent of the host. The kernel is
booted with "mica.bench", which makes the root task run user/tests/bench.c.
Results also go to <build>/bench/ipc.csv.
"""

import argparse
import csv
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "qemu"))
import qemu_boot  # noqa: E402

ICOUNT = ["-icount", "shift=0,align=off,sleep=off"]

DESCRIPTIONS = {
    "null_syscall": "null system call (cap_identify of slot 0), per call",
    "empty_loop": "the measuring loop itself, per iteration",
    "ipc_call_reply_recv_0_words": "call + reply_recv round trip, two address spaces, 0 words",
    "ipc_call_reply_recv_4_words": "call + reply_recv round trip, two address spaces, 4 words",
    "mm_map_unmap_1_page_untouched": "MAP + UNMAP of one page, never touched",
    "mm_map_touch_unmap_1_page": "MAP, touch (fault + zero-fill), UNMAP of one page",
    "mm_map_touch_unmap_64_pages_per_page": "the same for 64 pages, per page",
    "mm_map_populate_unmap_64_pages_per_page": "MAP with POPULATE + UNMAP of 64 pages, per page",
    "mm_wire_64_pages": "WIRE of 64 untouched pages (populate and pin), whole call",
    "mm_protect_1_page_of_64_split_and_merge": "PROTECT of one page inside a 64-page entry (split, then merge back), per call",
    "mm_map_unmap_with_10_entries": "MAP + UNMAP of one page in a map of 10 entries",
    "mm_map_unmap_with_1000_entries": "the same with 1 000 entries",
    "mm_map_unmap_with_10000_entries": "the same with 10 000 entries",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    args = ap.parse_args()
    image = os.path.join(args.build, "qemu-virt", "Image")
    cmd = ["qemu-system-riscv64", "-machine", "virt", "-smp", "1", "-m", "256M", "-nographic",
           "-no-reboot", "-bios", qemu_boot.OPENSBI, "-kernel", image, "-append", "mica.bench"]
    b = qemu_boot.Boot(cmd + ICOUNT)
    try:
        import time
        b.read_until(lambda t: any(l in t for l in qemu_boot.END_LINES), time.monotonic() + 300)
    finally:
        b.kill()
    out = b.text()
    rows = [r for r in re.findall(r"^BENCH (\w+) ([\d.]+) (\w+)$", out, re.M) if r[0] != "warmup"]
    if not rows or "BENCH done" not in out or "BENCH mm done" not in out:
        sys.stderr.write(out[-3000:])
        sys.stderr.write("\nbench: the benchmark run did not finish\n")
        return 1
    os.makedirs(os.path.join(args.build, "bench"), exist_ok=True)
    path = os.path.join(args.build, "bench", "ipc.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["benchmark", "value", "unit", "description"])
        for name, value, unit in rows:
            w.writerow([name, value, unit, DESCRIPTIONS.get(name, "")])
    print("%-42s %12s  %s" % ("benchmark", "instructions", "what"))
    for name, value, unit in rows:
        print("%-42s %12s  %s" % (name, value, DESCRIPTIONS.get(name, "")))
    print("(QEMU %s; written to %s)" % (" ".join(ICOUNT), path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
