#!/usr/bin/env python3
"""The Prometheus rules and the Grafana dashboard against a real Prometheus scraping a real
tftpd, all on loopback, bounded to about a minute.

Starts the given tftpd binary (userspace filter, a free port, a temp root) and Debian's
`prometheus` (1 s scrape and rule evaluation, loading dist/prometheus/alerts.yml and
recording.yml), runs real TFTP transfers (3 downloads, 12 requests for a missing file), then
checks that:

- every rule evaluates without error (health "ok") on the real series;
- every query of dist/grafana/tftpd.json, with Grafana's variables filled in, succeeds and
  returns data, and the completed-transfer and failure panels show the traffic;
- TftpdHighErrorRatio becomes pending from the real failures (12 of 15 requests fail), and
  TftpdDown becomes pending once the daemon has stopped.

Usage: python3 scripts/prometheus_e2e.py PATH/TO/tftpd     (run by `cargo xtask check-dist`)
"""

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = [ROOT / "dist/prometheus/alerts.yml", ROOT / "dist/prometheus/recording.yml"]
DASHBOARD = ROOT / "dist/grafana/tftpd.json"
GRAFANA_VARS = {"$__rate_interval": "1m", "$instance": ".*"}
# Every wait is bounded: a condition not met by then fails the check.
WAIT = 30.0
TFTP_TIMEOUT = 5.0


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def download(port, name):
    """A minimal RFC 1350 octet-mode download; returns the bytes, or None on ERROR."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(TFTP_TIMEOUT)
        s.sendto(b"\x00\x01" + name.encode() + b"\x00octet\x00", ("127.0.0.1", port))
        data = b""
        while True:
            pkt, peer = s.recvfrom(65536)
            opcode = int.from_bytes(pkt[:2], "big")
            if opcode == 5:
                return None
            if opcode != 3:
                raise RuntimeError(f"unexpected opcode {opcode}")
            data += pkt[4:]
            s.sendto(b"\x00\x04" + pkt[2:4], peer)
            if len(pkt) - 4 < 512:
                return data


class Prometheus:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}/api/v1/"

    def get(self, path, **params):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)

    def query(self, expr):
        return self.get("query", query=expr)

    def wait(self, what, condition):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except OSError:
                pass
            time.sleep(0.5)
        sys.exit(f"prometheus_e2e: timed out after {WAIT:.0f} s waiting for {what}")

    def pending(self, alert):
        res = self.query(f'ALERTS{{alertname="{alert}",alertstate="pending"}}')
        return bool(res["data"]["result"])


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    tftpd_bin = sys.argv[1]
    prometheus_bin = shutil.which("prometheus")
    if prometheus_bin is None:
        sys.exit("prometheus_e2e: prometheus is not installed (apt-get install prometheus)")
    problems = []
    procs = []
    with tempfile.TemporaryDirectory(prefix="tftpd-prom-e2e-") as tmp:
        tmp = Path(tmp)
        root = tmp / "root"
        root.mkdir()
        payload = os.urandom(3000)
        (root / "boot.bin").write_bytes(payload)
        for p in (tmp, root):
            p.chmod(0o755)
        (root / "boot.bin").chmod(0o644)
        tftp_port = free_port(socket.SOCK_DGRAM)
        metrics_port = free_port(socket.SOCK_STREAM)
        web_port = free_port(socket.SOCK_STREAM)
        config = tmp / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(r) for r in RULES],
            "scrape_configs": [{
                "job_name": "tftpd",
                "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
            }],
        }))
        # A listener thread pinned to CPU 0, so the pinned-listener panel has a series.
        tftpd_config = tmp / "tftpd.toml"
        tftpd_config.write_text("[performance.cpu]\naffinity = [0]\n")
        try:
            daemon = subprocess.Popen(
                [tftpd_bin, "--config", str(tftpd_config), "--root", str(root),
                 "--listen", f"127.0.0.1:{tftp_port}",
                 "--metrics-listen", f"127.0.0.1:{metrics_port}", "--ebpf", "off",
                 "--user", getpass.getuser()],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=open(tmp / "tftpd.log", "w"))
            procs.append(daemon)
            procs.append(subprocess.Popen(
                [prometheus_bin, f"--config.file={config}",
                 f"--storage.tsdb.path={tmp / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{web_port}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=open(tmp / "prometheus.log", "w")))
            prom = Prometheus(web_port)
            prom.wait("Prometheus to scrape tftpd (up == 1)",
                      lambda: prom.query('up{job="tftpd"} == 1')["data"]["result"])

            for _ in range(3):
                if download(tftp_port, "boot.bin") != payload:
                    problems.append("a download returned other bytes")
            for _ in range(12):
                if download(tftp_port, "missing.bin") is not None:
                    problems.append("a missing file was served")
            prom.wait("the transfers to be scraped", lambda: prom.query(
                'sum(tftpd_requests_total{outcome=~"completed|not_found"}) >= 15'
            )["data"]["result"])
            prom.wait("TftpdHighErrorRatio to be pending",
                      lambda: prom.pending("TftpdHighErrorRatio"))

            dash = json.loads(DASHBOARD.read_text())
            for panel in dash["panels"]:
                for target in panel.get("targets", []):
                    expr = target["expr"]
                    for var, value in GRAFANA_VARS.items():
                        expr = expr.replace(var, value)
                    res = prom.query(expr)
                    if res["status"] != "success" or not res["data"]["result"]:
                        problems.append(f"panel {panel['title']!r}: {expr} returned {res}")
            completed = prom.query('sum(increase(tftpd_requests_total{outcome="completed"}[1m]))')
            if float(completed["data"]["result"][0]["value"][1]) <= 0:
                problems.append("no completed transfer in the last minute")

            for group in prom.get("rules")["data"]["groups"]:
                for rule in group["rules"]:
                    if rule["health"] != "ok":
                        problems.append(f"rule {rule['name']}: {rule.get('lastError')}")

            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=WAIT)
            prom.wait("TftpdDown to be pending after the daemon stopped",
                      lambda: prom.pending("TftpdDown"))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
                    p.wait(timeout=WAIT)
    if problems:
        for p in problems:
            print(f"prometheus_e2e: {p}", file=sys.stderr)
        sys.exit(1)
    print("prometheus_e2e: rules healthy, every dashboard query answered, "
          "TftpdHighErrorRatio and TftpdDown pending from real traffic and a real stop")


if __name__ == "__main__":
    main()
