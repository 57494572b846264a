#!/usr/bin/env python3
"""The [performance.file_io] fast paths against the portable path, in one run.

Starts one release tftpd per setting on loopback (portable = defaults with the cache off;
nogso = GSO off; cache; async = no transfer threads, every transfer on the async runtime;
fadvise; every daemon but `cache` has the cache off), then runs tftp-load against
each, alternating the daemons within every round. Every byte is verified by tftp-load.
Reports per scenario and daemon: median MB/s over the rounds, daemon CPU seconds per GiB
(utime + stime from /proc/PID/stat over all rounds), and both as ratios to `portable`.
Then one short run per daemon under `strace -c -f -p PID` for system calls per MiB.

Usage: [ONLY=async,...] scripts/measure/file-io.sh [ROUNDS]   (default 3)
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
TFTPD = os.path.join(TARGET, "release", "tftpd")
LOAD = os.path.join(TARGET, "release", "tftp-load")
TICK = os.sysconf("SC_CLK_TCK")

DAEMONS = {
    "portable": "[performance.file_io]\ncache_size = 0\n",
    "nogso": "[performance.batching]\ngso = false\n[performance.file_io]\ncache_size = 0\n",
    "cache": "[performance.file_io]\ncache_size = 268435456\ncache_max_file = 134217728\n",
    "async": "[performance.file_io]\ncache_size = 0\n[performance.cpu]\ntransfer_threads = 0\n",
    # Last in each round: its DONTNEED empties the page cache of the file it streamed, so
    # the file is read back in (untimed) before the next round.
    "fadvise": "[performance.file_io]\nfadvise = true\nfadvise_threshold = 33554432\ncache_size = 0\n",
}

# (label, file, blksize, windowsize, clients)
SCENARIOS = [
    ("1x64MiB blk1428 lock-step", "64M.bin", 1428, 1, 1),
    ("1x64MiB blk8192 lock-step", "64M.bin", 8192, 1, 1),
    # blksize 8192 x 16 overflows the client's receive buffer here (benchmarks.md, GSO).
    ("1x64MiB blk1428 window16", "64M.bin", 1428, 16, 1),
    ("100x1MiB blk1428 lock-step", "1M.bin", 1428, 1, 100),
]


def cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def load(port, path, blksize, windowsize, clients):
    cmd = [LOAD, "get", "--server", f"127.0.0.1:{port}", "--file", os.path.basename(path),
           "--verify", path, "--blksize", str(blksize), "--clients", str(clients), "--json"]
    if windowsize > 1:
        cmd += ["--windowsize", str(windowsize)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300).stdout
    r = json.loads(out)
    if r["ok"] != r["transfers"]:
        sys.exit(f"port {port}: {r['transfers'] - r['ok']} transfers failed: {r['failures']}")
    return r


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    # ONLY=portable,async runs a subset (portable is always kept: the ratios need it).
    only = os.environ.get("ONLY")
    if only:
        keep = {"portable", *only.split(",")}
        for name in list(DAEMONS):
            if name not in keep:
                del DAEMONS[name]
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        for name, size in [("64M.bin", 64 << 20), ("1M.bin", 1 << 20), ("8M.bin", 8 << 20)]:
            with open(os.path.join(d, name), "wb") as f:
                f.write(os.urandom(size))
            os.chmod(os.path.join(d, name), 0o644)
        procs = {}
        for i, (name, conf) in enumerate(DAEMONS.items()):
            cpath = os.path.join(d, f"{name}.toml")
            with open(cpath, "w") as f:
                f.write(conf)
            port = 7171 + i
            p = subprocess.Popen([TFTPD, "--config", cpath, "--root", d, "--listen",
                                  f"127.0.0.1:{port}", "--user", user, "--ebpf", "off",
                                  "--log-level", "warn"])
            procs[name] = (p, port)
        time.sleep(1)
        try:
            run(d, procs, rounds)
        finally:
            for p, _ in procs.values():
                p.terminate()
                p.wait(timeout=15)


def rewarm(d):
    for name in ("64M.bin", "1M.bin", "8M.bin"):
        with open(os.path.join(d, name), "rb") as f:
            while f.read(1 << 20):
                pass


def run(d, procs, rounds):
    print(f"rounds: {rounds}; tftpd {TFTPD}; machine: {os.cpu_count()} CPUs, "
          f"kernel {os.uname().release}")
    for label, fname, blk, win, clients in SCENARIOS:
        path = os.path.join(d, fname)
        mbs = {n: [] for n in procs}
        cpu = {n: 0.0 for n in procs}
        gib = {n: 0.0 for n in procs}
        for _ in range(rounds):
            rewarm(d)
            for name, (p, port) in procs.items():
                c0 = cpu_secs(p.pid)
                r = load(port, path, blk, win, clients)
                cpu[name] += cpu_secs(p.pid) - c0
                gib[name] += r["bytes"] / (1 << 30)
                mbs[name].append(r["mb_per_s"])
        print(f"\n## {label}\n")
        print("| daemon | MB/s (median) | runs | daemon CPU s/GiB | MB/s ratio | CPU ratio |")
        print("|---|---|---|---|---|---|")
        base_mb = statistics.median(mbs["portable"])
        base_cpu = cpu["portable"] / gib["portable"]
        for name in procs:
            m = statistics.median(mbs[name])
            c = cpu[name] / gib[name]
            runs = " ".join(f"{x:.0f}" for x in mbs[name])
            print(f"| {name} | {m:.1f} | {runs} | {c:.2f} | {m / base_mb:.2f} | "
                  f"{c / base_cpu:.2f} |")
    print("\n## system calls per MiB (strace -c -f -p PID; 1 client, 8 MiB, blksize 1428, "
          "lock-step; the cache run is a hit)\n")
    print("| daemon | calls/MiB | top calls |")
    print("|---|---|---|")
    path = os.path.join(d, "8M.bin")
    rewarm(d)
    for name, (p, port) in procs.items():
        load(port, path, 1428, 1, 1)  # loads the cache; warms everything else
        out = os.path.join(d, f"strace-{name}.txt")
        s = subprocess.Popen(["strace", "-c", "-f", "-q", "-o", out, "-p", str(p.pid)])
        time.sleep(0.5)
        load(port, path, 1428, 1, 1)
        s.terminate()
        s.wait(timeout=30)
        calls, top = parse_strace(out)
        print(f"| {name} | {calls / 8:.0f} | {top} |")


def parse_strace(path):
    rows = []
    total = 0
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
            if not m:
                continue
            if m.group(2) == "total":
                total = int(m.group(1))
            else:
                rows.append((int(m.group(1)), m.group(2)))
    rows.sort(reverse=True)
    return total, ", ".join(f"{n} {c / 8:.0f}" for c, n in rows[:4])


if __name__ == "__main__":
    main()
