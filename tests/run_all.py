#!/usr/bin/env python3
"""Run every Mica test and print one summed verdict.

Layers: host cmocka tests (TAP output), short libFuzzer runs, and QEMU boot
configurations. The last line is "N passed, N failed"; any failure makes the
exit status non-zero. Logs go to <build>/test-logs/.
"""

import argparse
import glob
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "qemu"))
import qemu_boot  # noqa: E402


def run_host_tests(build, logs):
    results = []
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP", MICA_DTB_DIR=os.path.join(build, "dtb"))
    for binary in sorted(glob.glob(os.path.join(build, "host", "test_*"))):
        if not os.access(binary, os.X_OK) or binary.endswith(".d"):
            continue
        name = os.path.basename(binary)
        t0 = time.monotonic()
        try:
            p = subprocess.run([binary], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=600)
            out, code = p.stdout.decode("utf-8", "replace"), p.returncode
        except subprocess.TimeoutExpired as e:
            out, code = (e.stdout or b"").decode("utf-8", "replace") + "\nTIMEOUT\n", -1
        with open(os.path.join(logs, name + ".log"), "w") as f:
            f.write(out)
        seen = 0
        for verdict, test in re.findall(r"^(ok|not ok) \d+ - (\S+)", out, re.M):
            seen += 1
            results.append(("%s: %s" % (name, test), None if verdict == "ok" else "failed"))
        plan = re.search(r"^1\.\.(\d+)", out, re.M)
        if plan and int(plan.group(1)) > seen:
            results.append(("%s: (missing results)" % name,
                            "%d of %s tests reported nothing" % (int(plan.group(1)) - seen,
                                                                  plan.group(1))))
        if code != 0 and all(r[1] is None for r in results if r[0].startswith(name + ":")):
            results.append(("%s: exit status" % name, "exited with %d" % code))
        if seen == 0:
            results.append(("%s: (no results)" % name, "the binary reported no tests"))
        print("  %-28s %3d results in %5.1fs" % (name, seen, time.monotonic() - t0), flush=True)
    return results


def run_fuzzers(build, logs, seconds):
    results = []
    for binary in sorted(glob.glob(os.path.join(build, "fuzz", "fuzz_*"))):
        if not os.access(binary, os.X_OK) or os.path.isdir(binary):
            continue
        name = os.path.basename(binary)
        corpus = os.path.join(build, "fuzz", "corpus-short", name)
        os.makedirs(corpus, exist_ok=True)
        p = subprocess.run([binary, "-max_total_time=%d" % seconds, "-print_final_stats=1",
                            "-artifact_prefix=%s/" % logs, corpus],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = p.stdout.decode("utf-8", "replace")
        with open(os.path.join(logs, name + ".log"), "w") as f:
            f.write(out)
        runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
        results.append(("%s: %ds run" % (name, seconds),
                        None if p.returncode == 0 else "fuzzer found a failure (see %s.log)" % name))
        print("  %-28s %s executions" % (name, runs.group(1) if runs else "?"), flush=True)
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--fuzz-seconds", type=int, default=int(os.environ.get("FUZZ_SHORT", "20")))
    ap.add_argument("--only", choices=["host", "fuzz", "qemu"])
    args = ap.parse_args()
    logs = os.path.join(args.build, "test-logs")
    os.makedirs(logs, exist_ok=True)

    results = []
    if args.only in (None, "host"):
        print("host tests:", flush=True)
        results += run_host_tests(args.build, logs)
    if args.only in (None, "fuzz"):
        print("fuzzers (%ds each):" % args.fuzz_seconds, flush=True)
        results += run_fuzzers(args.build, logs, args.fuzz_seconds)
    if args.only in (None, "qemu"):
        print("qemu boots:", flush=True)
        results += qemu_boot.run(args.build, logs)

    failed = [r for r in results if r[1] is not None]
    for name, why in results:
        if why is not None:
            print("FAIL %s: %s" % (name, why))
    print("logs in %s" % logs)
    print("%d passed, %d failed" % (len(results) - len(failed), len(failed)))
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
