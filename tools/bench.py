#!/usr/bin/env python3
"""Run Mica's in-QEMU benchmarks and print them as a table.

QEMU runs with -icount shift=0,align=off,sleep=off, so the guest's cycle
counter advances exactly once per instruction: the figures are instruction
counts, identical from run to run and independent of the host. The kernel is
booted with "mica.bench", which makes the root task run user/tests/bench.c.
The machine boots twice: with one hart for every figure but the SMP ones, then
with SMP_HARTS harts for those (printed between "BENCH done" and "BENCH smp
done"). With several harts QEMU's one virtual clock counts the instructions of
all of them, so an SMP figure includes the other harts' work.
Results also go to <build>/bench/ipc.csv.
"""

import argparse
import csv
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "qemu"))
import qemu_boot  # noqa: E402

ICOUNT = ["-icount", "shift=0,align=off,sleep=off"]
SMP_HARTS = 4

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
    "ipc_call_reply_recv_same_hart": "call + reply_recv round trip, both threads pinned to hart 0",
    "ipc_call_reply_recv_cross_hart": "the same, the server pinned to hart 1 (all harts' instructions)",
    "mm_unmap_1_page_ran_on_1_hart": "mm_remove of 1 page; its (blocked) task ran only on the caller's hart",
    "mm_unmap_1_page_ran_on_other_hart": "the same; the task ran only on one other hart",
    "mm_unmap_1_page_ran_on_%d_harts" % SMP_HARTS:
        "the same; the task touched the page on every hart",
}


def boot(image, harts, timeout, last_line):
    """Boot with `harts` harts under icount until `last_line` or the end;
    return the console text."""
    cmd = ["qemu-system-riscv64", "-machine", "virt", "-smp", str(harts), "-m", "256M",
           "-nographic", "-no-reboot", "-bios", qemu_boot.OPENSBI, "-kernel", image,
           "-append", "mica.bench"]
    b = qemu_boot.Boot(cmd + ICOUNT)
    ends = (last_line,) + qemu_boot.END_LINES
    try:
        b.read_until(lambda t: any(l in t for l in ends), time.monotonic() + timeout)
    finally:
        b.kill()
    return b.text()


def bench_rows(text, harts):
    return [(name, value, unit, harts) for name, value, unit in
            re.findall(r"^BENCH (\w+) ([\d.]+) (\w+)$", text, re.M) if name != "warmup"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    args = ap.parse_args()
    image = os.path.join(args.build, "qemu-virt", "Image")
    out = boot(image, 1, 300, "BENCH mm done")
    rows = bench_rows(out, 1)
    if not rows or "BENCH done" not in out or "BENCH mm done" not in out:
        sys.stderr.write(out[-3000:])
        sys.stderr.write("\nbench: the benchmark run did not finish\n")
        return 1
    out = boot(image, SMP_HARTS, 600, "BENCH smp done")
    if "BENCH done" not in out or "BENCH smp done" not in out:
        sys.stderr.write(out[-3000:])
        sys.stderr.write("\nbench: the %d-hart benchmark run did not finish\n" % SMP_HARTS)
        return 1
    # Only the SMP figures: the rest were measured on one hart above.
    smp = out[out.index("BENCH done"):out.index("BENCH smp done")]
    rows += bench_rows(smp, SMP_HARTS)
    os.makedirs(os.path.join(args.build, "bench"), exist_ok=True)
    path = os.path.join(args.build, "bench", "ipc.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["benchmark", "value", "unit", "harts", "description"])
        for name, value, unit, harts in rows:
            w.writerow([name, value, unit, harts, DESCRIPTIONS.get(name, "")])
    print("%-42s %12s %5s  %s" % ("benchmark", "instructions", "harts", "what"))
    for name, value, unit, harts in rows:
        print("%-42s %12s %5d  %s" % (name, value, harts, DESCRIPTIONS.get(name, "")))
    print("(QEMU %s; written to %s)" % (" ".join(ICOUNT), path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
