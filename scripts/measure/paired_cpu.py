# Per-transfer daemon CPU of several tftpd builds or settings, measured side by side.
#
# Every variant runs at once, each daemon in a cgroup v2 group of its own (its CPU is read
# from cpu.stat usage_usec, so every thread it has is counted) with its own ebpf.pin_dir.
# Each round runs one `tftp-load get` against every variant, in a fresh random order, so the
# machine's drift (this VM's speed moves by 2x over minutes) hits every variant alike; the
# ratio of each run to the first variant's run of the same round is what is compared.
#
# Root (cgroups, eBPF). Needs target/release/tftp-load (cargo build --release -p tftpd-benches).
#
# Usage:
#   python3 scripts/measure/paired_cpu.py [--rounds 40] [--clients 100] [--size 1000] \
#       [--load-args "--blksize 1428"] NAME=COMMAND [NAME=COMMAND ...]
# e.g.
#   python3 scripts/measure/paired_cpu.py head=/tmp/tftpd-head new=target/release/tftpd \
#       "warn=target/release/tftpd --log-level warn"
# Prints, per variant: median and mean daemon CPU per transfer, the median of the per-round
# ratios to the first variant, and the median init p99 (request to first DATA).
import argparse, json, os, random, shlex, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOAD = os.path.join(REPO, "target", "release", "tftp-load")
BASE_PORT = 7100


def cgroup_root():
    # Unified hierarchy at /sys/fs/cgroup, or a hybrid host's v2 mount beside the v1 ones.
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if os.path.exists(os.path.join(root, "cgroup.controllers")):
            return root
    sys.exit("no cgroup v2 hierarchy found (/sys/fs/cgroup or /sys/fs/cgroup/unified)")


def usage_usec(group):
    with open(os.path.join(group, "cpu.stat")) as f:
        for line in f:
            if line.startswith("usage_usec"):
                return int(line.split()[1])
    sys.exit(f"no usage_usec in {group}/cpu.stat")


def main():
    p = argparse.ArgumentParser(description="Per-transfer daemon CPU of tftpd variants, side by side.")
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--size", type=int, default=1000, help="bytes of the served file")
    p.add_argument("--load-args", default="--blksize 1428")
    p.add_argument("variants", nargs="+", metavar="NAME=COMMAND")
    a = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: each daemon gets a cgroup and its own eBPF pin directory")
    if not os.access(LOAD, os.X_OK):
        sys.exit(f"{LOAD} is missing: cargo build --release -p tftpd-benches")
    variants = [v.split("=", 1) for v in a.variants]
    if any(len(v) != 2 for v in variants):
        sys.exit("each variant is NAME=COMMAND")
    work = tempfile.mkdtemp(prefix="paired-cpu-")
    root = os.path.join(work, "root")
    os.mkdir(root)
    os.chmod(work, 0o755)
    name = f"f{a.size}"
    with open(os.path.join(root, name), "wb") as f:
        f.write(os.urandom(a.size))
    cg_root = cgroup_root()
    daemons, groups = [], []
    try:
        for i, (vname, cmd) in enumerate(variants):
            group = os.path.join(cg_root, f"paired-cpu-{i}")
            os.makedirs(group, exist_ok=True)
            groups.append(group)
            config = os.path.join(work, f"{vname}.toml")
            with open(config, "w") as f:
                f.write(f'[ebpf]\npin_dir = "/sys/fs/bpf/tftpd-paired-{i}"\n')
            argv = shlex.split(cmd) + [
                "--config", config, "--root", root, "--listen", f"127.0.0.1:{BASE_PORT + i}",
            ]
            log = open(os.path.join(work, f"{vname}.log"), "w")
            # The shell joins the cgroup, then becomes the daemon.
            daemons.append(subprocess.Popen(
                ["sh", "-c", f'echo $$ > {group}/cgroup.procs; exec "$@"', "sh"] + argv,
                stdout=log, stderr=log))
        time.sleep(2)
        for i, d in enumerate(daemons):
            if d.poll() is not None:
                sys.exit(f"{variants[i][0]} exited; see {work}/{variants[i][0]}.log")
        cpu = {v[0]: [] for v in variants}
        p99 = {v[0]: [] for v in variants}
        ratios = {v[0]: [] for v in variants}
        for r in range(a.rounds):
            order = list(range(len(variants)))
            random.shuffle(order)
            this_round = {}
            for i in order:
                before = usage_usec(groups[i])
                out = subprocess.run(
                    [LOAD, "get", "--server", f"127.0.0.1:{BASE_PORT + i}", "--file", name,
                     "--verify", os.path.join(root, name), "--clients", str(a.clients), "--json"]
                    + shlex.split(a.load_args),
                    capture_output=True, text=True, check=True).stdout
                after = usage_usec(groups[i])
                report = json.loads(out)
                if report["ok"] != a.clients:
                    sys.exit(f"{variants[i][0]}: {report['ok']} of {a.clients} transfers: {out}")
                this_round[i] = (after - before) / report["ok"]
                p99[variants[i][0]].append(report["init_latency"]["p99_ms"])
            for i, per in this_round.items():
                cpu[variants[i][0]].append(per)
                ratios[variants[i][0]].append(per / this_round[0])
        first = variants[0][0]
        for vname, _ in variants:
            print(f"{vname:16s} median {statistics.median(cpu[vname]):8.1f} us/transfer  "
                  f"mean {statistics.mean(cpu[vname]):8.1f}  "
                  f"ratio to {first} {statistics.median(ratios[vname]):.3f}  "
                  f"init p99 {statistics.median(p99[vname]):.2f} ms  (n={len(cpu[vname])})")
    finally:
        for d in daemons:
            d.terminate()
        for d in daemons:
            d.wait()
        for g in groups:
            try:
                os.rmdir(g)
            except OSError:
                pass


if __name__ == "__main__":
    main()
