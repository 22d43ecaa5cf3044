"""Boot Mica under QEMU and judge what it prints.

Each boot configuration starts QEMU in its own process group with a timeout,
reads the serial console, and turns what the kernel printed into test results:
the banner facts the configuration implies (RAM, harts, timer, load address),
one result per "KTEST name: PASS|FAIL" line, and a clean end. Whatever happens,
the QEMU process group is killed before the next configuration starts.
"""

import os
import re
import select
import signal
import subprocess
import time

OPENSBI = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin"
UBOOT_SMODE = "/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin"
END_LINES = ("mica: shutdown", "mica: halted")


class Config:
    def __init__(self, name, machine="virt", smp=1, mem="128M", cpu=None, append=None,
                 image="qemu-virt", ram_mib=None, usable=None, unusable=(), timer=None,
                 load_pa=None, uboot=False, uboot_cmds=None, disk=None, expect=(), crash=False,
                 timeout=180, running=None):
        self.name = name
        self.machine = machine
        self.smp = smp
        self.mem = mem
        self.cpu = cpu
        self.append = append
        self.image = image
        self.ram_mib = ram_mib
        self.usable = list(usable) if usable is not None else list(range(smp))
        # Harts expected to run tasks: every usable one, unless the boot says otherwise.
        self.running = running if running is not None else len(self.usable)
        self.unusable = list(unusable)
        self.timer = timer
        self.load_pa = load_pa
        self.uboot = uboot
        # With U-Boot: the commands typed at its prompt, one per prompt. None: do not
        # interrupt autoboot, U-Boot's own bootcmd must find and boot the kernel.
        self.uboot_cmds = None if uboot_cmds is None else list(uboot_cmds)
        # A raw disk image (path relative to the build directory) attached as a
        # virtio disk; QEMU writes to a throw-away overlay, never to the file.
        self.disk = disk
        # (what, regex) pairs the console must also match, e.g. U-Boot's own lines.
        self.expect = list(expect)
        self.crash = crash
        self.timeout = timeout


CONFIGS = [
    Config("virt-smp1-128M", smp=1, mem="128M", ram_mib=128, timer="stimecmp",
           load_pa=0x80200000),
    # Five ASID bits (31 ASIDs) make the ASIDs run out several times while four
    # harts run tasks; the shootdown tests must show remote fences happened.
    # Its shootdown tests keep three harts spinning: on a 2-core host it runs about 100 s.
    Config("virt-smp4-4G", smp=4, mem="4G", ram_mib=4096, timer="stimecmp", load_pa=0x80200000,
           append="mica.asid_bits=5", timeout=300,
           expect=[("asid bits limited", r"^mmu:\s+mica.asid_bits: using 5 of 16 ASID bits$"),
                   ("remote fences and ASID rollover",
                    r"^mica: 4 harts ran tasks; [1-9]\d* remote TLB fences reached [1-9]\d* "
                    r"harts; [1-9]\d* ASID rollovers with several harts running")]),
    # Two harts, but "mica.nohsm" makes the kernel act as on firmware without SBI
    # HSM (the same branch): it must say so and run on the boot hart alone.
    Config("virt-nosstc-nohsm", smp=2, mem="256M", cpu="rv64,sstc=false,h=false", ram_mib=256,
           timer="SBI TIME", append="mica.nohsm", running=1,
           expect=[("no-HSM line", r"^smp:\s+the firmware has no SBI HSM extension: other harts "
                    r"stay off$")]),
    # The SBI console (legacy putchar, one firmware call per character) makes
    # this machine's run the slowest.
    Config("sifive_u-smp5", machine="sifive_u", smp=5, mem="1G", ram_mib=1024,
           usable=[1, 2, 3, 4], unusable=[0], timer="SBI TIME", timeout=300,
           expect=[("remote fences", r"^mica: 4 harts ran tasks; [1-9]\d* remote TLB fences")]),
    # Debian's U-Boot loads a build whose header asks for text_offset 64 MiB:
    # the same code must run at a second physical address.
    Config("uboot-booti-reloc", smp=2, mem="512M", image="qemu-virt-reloc", ram_mib=512,
           load_pa=0x84000000, uboot=True, uboot_cmds=["booti 0x90000000 - ${fdtcontroladdr}"]),
    # The VisionFive 2 SD card rehearsed (docs/VISIONFIVE2.md, `make sdcard-rehearsal`):
    # Debian's U-Boot, left alone, scans the virtio disk, finds extlinux.conf on
    # partition 3 and boots /Image with U-Boot's own tree (the image has no fdt line).
    Config("uboot-sdcard-extlinux", smp=2, mem="1G", ram_mib=1024, load_pa=0x80200000,
           uboot=True, uboot_cmds=None, disk="visionfive2/sdcard-qemu.img",
           expect=[("u-boot scanned partition 3", r"^Scanning virtio 0:3\.\.\.$"),
                   ("u-boot used extlinux", r"^Found /extlinux/extlinux\.conf$"),
                   ("u-boot loaded /Image", r"^Retrieving file: /Image$")]),
    # The same layout with an fdt line, as on the board, naming QEMU's own tree.
    Config("uboot-sdcard-extlinux-fdt", smp=1, mem="512M", ram_mib=512, load_pa=0x80200000,
           uboot=True, uboot_cmds=None, disk="visionfive2/sdcard-qemu-fdt.img",
           expect=[("u-boot used extlinux", r"^Found /extlinux/extlinux\.conf$"),
                   ("u-boot loaded the fdt", r"^Retrieving file: /qemu-virt-smp1-512M\.dtb$"),
                   ("opensbi region kept", r"^reserved:\s+0x0080000000-0x0080080000")]),
    # StarFive's path: import vf2_uEnv.txt and run boot2, which loads the tree named on
    # the card (QEMU's, here) and writes into it the RAM size the board code would have
    # set (256 MiB of the 512): the kernel must see the fixed-up size.
    Config("uboot-sdcard-vf2uenv", smp=1, mem="512M", ram_mib=256, load_pa=0x80200000,
           uboot=True, disk="visionfive2/sdcard-qemu-fdt.img",
           uboot_cmds=["virtio scan",
                       "load virtio 0:3 ${scriptaddr} /vf2_uEnv.txt",
                       "env import -t ${scriptaddr} ${filesize}",
                       "setenv mica_if virtio; setenv devnum 0",
                       "setenv memory_addr 80000000; setenv memory_size 10000000",
                       "run boot2"],
           expect=[("boot2 ran", r"^Mica: booting /Image from virtio 0:3 via vf2_uEnv\.txt$"),
                   ("memory fix-up", r"^Mica: RAM size 0x10000000 at 0x80000000"),
                   ("opensbi region kept", r"^reserved:\s+0x0080000000-0x0080080000")]),
    Config("crash-report", smp=1, mem="128M", append="mica.crash", ram_mib=128, crash=True),
]


def qemu_command(cfg, build):
    image = os.path.join(build, cfg.image, "Image")
    cmd = ["qemu-system-riscv64", "-machine", cfg.machine, "-smp", str(cfg.smp), "-m", cfg.mem,
           "-nographic", "-no-reboot", "-bios", OPENSBI]
    if cfg.cpu:
        cmd += ["-cpu", cfg.cpu]
    if cfg.uboot:
        cmd += ["-kernel", UBOOT_SMODE]
        if cfg.disk:
            cmd += ["-drive", "file=%s,format=raw,if=none,id=hd0,snapshot=on"
                    % os.path.join(build, cfg.disk),
                    "-device", "virtio-blk-device,drive=hd0"]
        else:
            cmd += ["-device", "loader,file=%s,addr=0x90000000,force-raw=on" % image]
    else:
        cmd += ["-kernel", image]
        if cfg.append:
            cmd += ["-append", cfg.append]
    return cmd


class Boot:
    """One QEMU run: collects output, can answer prompts, always cleans up."""

    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.out = b""

    def text(self):
        return self.out.decode("utf-8", "replace").replace("\r", "")

    def read_until(self, predicate, deadline):
        while time.monotonic() < deadline:
            if predicate(self.text()):
                return True
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return predicate(self.text())
                self.out += chunk
            elif self.proc.poll() is not None:
                return predicate(self.text())
        return predicate(self.text())

    def send(self, s):
        self.proc.stdin.write(s.encode())
        self.proc.stdin.flush()

    def finish(self, grace):
        deadline = time.monotonic() + grace
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read_until(lambda t: False, min(deadline, time.monotonic() + 0.5))
        self.kill()

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def boot(cfg, build):
    b = Boot(qemu_command(cfg, build))
    try:
        deadline = time.monotonic() + cfg.timeout
        if cfg.uboot and cfg.uboot_cmds is not None:
            if b.read_until(lambda t: "Hit any key to stop autoboot" in t, deadline):
                b.send("\n")
                for c in cfg.uboot_cmds:
                    # Each command waits for a fresh prompt after the previous one.
                    seen = len(b.text())
                    if not b.read_until(lambda t: t[seen:].rstrip().endswith("=>"), deadline):
                        break
                    b.send(c + "\n")
        b.read_until(lambda t: any(l in t for l in END_LINES), deadline)
        # After the final line QEMU exits by itself when SRST works; give it a moment.
        b.finish(3)
    finally:
        b.kill()
    return b.text(), time.monotonic() <= deadline


def judge(cfg, out, in_time):
    """Return a list of (test name, failure reason or None)."""
    results = []

    def check(what, ok, why):
        results.append(("%s: %s" % (cfg.name, what), None if ok else why))

    banner = re.search(r"^Mica \S+ \(.*\), a RISC-V Sv39 microkernel$", out, re.M)
    check("banner", banner is not None, "no banner on the console")
    ram = re.search(r"^ram total: (\d+) MiB", out, re.M)
    if cfg.ram_mib is not None:
        check("ram", ram is not None and int(ram.group(1)) == cfg.ram_mib,
              "expected %d MiB, console says %s" % (cfg.ram_mib, ram.group(1) if ram else "nothing"))
    harts = re.search(r"^harts:\s+usable([\d ]*); not usable([\w ]*); boot hart (\d+)$", out, re.M)
    if harts:
        usable = [int(x) for x in harts.group(1).split()]
        unusable = [int(x) for x in harts.group(2).split() if x.isdigit()]
        boot_hart = int(harts.group(3))
        check("harts", usable == cfg.usable and unusable == cfg.unusable
              and boot_hart in cfg.usable,
              "expected usable %s / not usable %s, console says %s / %s, boot hart %d"
              % (cfg.usable, cfg.unusable, usable, unusable, boot_hart))
    else:
        check("harts", False, "no harts line")
    # Every usable hart runs tasks: the boot hart plus those started through HSM.
    smp = re.search(r"^smp:\s+(\d+) harts? running tasks \(hart ids by index:([\d ]*)\)$", out, re.M)
    if not cfg.crash:  # the crash boot stops before the other harts start
        check("harts running tasks",
            smp is not None and int(smp.group(1)) == cfg.running
            and len(smp.group(2).split()) == cfg.running
            and set(int(x) for x in smp.group(2).split()) <= set(cfg.usable),
            "expected %d of harts %s running tasks, console says %s"
            % (cfg.running, cfg.usable, smp.group(0) if smp else "nothing"))
    if cfg.timer:
        t = re.search(r"^timer:\s+\d+ Hz via (.*)$", out, re.M)
        check("timer", t is not None and cfg.timer in t.group(1),
              "expected %s, console says %s" % (cfg.timer, t.group(1) if t else "nothing"))
    if cfg.load_pa is not None:
        m = re.search(r"^image:\s+loaded at (0x[0-9a-f]+)", out, re.M)
        check("load address", m is not None and int(m.group(1), 16) == cfg.load_pa,
              "expected 0x%x, console says %s" % (cfg.load_pa, m.group(1) if m else "nothing"))
    for what, pattern in cfg.expect:
        check(what, re.search(pattern, out, re.M) is not None, "no match for %r" % pattern)
    if cfg.crash:
        for what, pattern in (("report cause", r"^scause 0x000000000000000f \(store/AMO page fault\)"),
                              ("report stval", r"^stval  0xffffffffc01fe000"),
                              ("report backtrace", r"^backtrace .*\n  #0 0xffffffff8"),
                              ("clean halt", r"^mica: halted after a fatal error")):
            check(what, re.search(pattern, out, re.M) is not None, "no match for %r" % pattern)
        return results
    # KTEST: the kernel's boot-time self tests; UTEST: the user-space test tasks.
    for kind in ("KTEST", "UTEST"):
        for name, verdict, why in re.findall(r"^%s ([\w.-]+): (PASS|FAIL)(.*)$" % kind, out, re.M):
            results.append(("%s: %s %s" % (cfg.name, kind.lower(), name),
                            None if verdict == "PASS" else why.strip() or "failed"))
        summary = re.search(r"^%s summary: (\d+) passed, (\d+) failed" % kind, out, re.M)
        check("%s summary" % kind.lower(), summary is not None,
              "the %s tests never finished" % ("kernel's" if kind == "KTEST" else "user"))
    check("no task killed unexpectedly",
          not re.search(r"^mica: task \d+ \((root|server)\) killed", out, re.M),
          "a system task died")
    check("clean end", in_time and any(l in out for l in END_LINES),
          "no final shutdown line within %ds" % cfg.timeout)
    return results


def run(build, log_dir, names=None):
    os.makedirs(log_dir, exist_ok=True)
    results = []
    for cfg in CONFIGS:
        if names and cfg.name not in names:
            continue
        if cfg.disk and not os.path.exists(os.path.join(build, cfg.disk)):
            results.append(("%s: disk image" % cfg.name,
                            "%s missing (make sdcard-rehearsal builds it)" % cfg.disk))
            continue
        out, in_time = boot(cfg, build)
        with open(os.path.join(log_dir, cfg.name + ".log"), "w") as f:
            f.write(out)
        results += judge(cfg, out, in_time)
    return results
