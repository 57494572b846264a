#!/usr/bin/env python3
"""Checks that the container and Kubernetes files in dist/ agree with the daemon's own files.

Schema validity is checked elsewhere (kubernetes-validate, hadolint, both run by
`cargo xtask check-dist`); this checks what no generic linter knows:

- the DaemonSet's ConfigMap carries exactly docs/examples/container.toml (which the config
  tests load), and the container task stages that file, which the Containerfile installs as /etc/tftpd/tftpd.toml;
- the metrics port of that config is the one the readiness probe, the Prometheus
  annotations, the container port and EXPOSE use; the HEALTHCHECK and the liveness probe run
  `tftpd health`, which reads it from the config;
- the capabilities granted equal the bounding set of dist/systemd/tftpd.service, and ALL
  others are dropped;
- host networking, the /sys/fs/bpf host mount, the config and root mounts, resources;
- every query of the Grafana dashboard is valid PromQL: with Grafana's variables replaced by
  plain values, each becomes a recording rule that `promtool check rules` parses (when
  promtool is on PATH; `cargo xtask check-dist` installs it or says why not).

Usage: python3 scripts/check_dist.py   (from the repository root; exits 1 listing problems)
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "docs/examples/container.toml"
UNIT = ROOT / "dist/systemd/tftpd.service"
CONTAINERFILE = ROOT / "dist/Containerfile"
DAEMONSET = ROOT / "dist/kubernetes/daemonset.yaml"
CONTAINER_TASK = ROOT / "xtask/src/dist/container/mod.rs"
DASHBOARD = ROOT / "dist/grafana/tftpd.json"
# What Grafana puts in place of its variables before a query reaches Prometheus.
GRAFANA_VARS = {"$__rate_interval": "1m", "$instance": ".*"}

problems = []


def check(ok, what):
    if not ok:
        problems.append(what)


def unit_capabilities():
    for line in UNIT.read_text().splitlines():
        if line.startswith("CapabilityBoundingSet="):
            return {c.removeprefix("CAP_") for c in line.split("=", 1)[1].split()}
    sys.exit(f"{UNIT}: no CapabilityBoundingSet line")


def metrics_port(config):
    listen = config.get("metrics", {}).get("listen")
    if not listen:
        sys.exit(f"{CONFIG}: metrics.listen is not set; the probes need it")
    return int(listen.rsplit(":", 1)[1])


def check_daemonset(config_text, config, caps):
    docs = [d for d in yaml.safe_load_all(DAEMONSET.read_text()) if d]
    by_kind = {d["kind"]: d for d in docs}
    check(set(by_kind) == {"Namespace", "ConfigMap", "DaemonSet"},
          f"daemonset.yaml: kinds are {sorted(by_kind)}")
    cm = by_kind["ConfigMap"]
    check(cm["data"].get("tftpd.toml") == config_text,
          "ConfigMap data tftpd.toml differs from docs/examples/container.toml")

    ds = by_kind["DaemonSet"]
    ns = by_kind["Namespace"]["metadata"]["name"]
    check(ds["metadata"].get("namespace") == ns and cm["metadata"].get("namespace") == ns,
          f"ConfigMap and DaemonSet must be in namespace {ns}")
    tmpl = ds["spec"]["template"]
    check(ds["spec"]["selector"]["matchLabels"].items() <= tmpl["metadata"]["labels"].items(),
          "the selector does not match the pod labels")
    pod = tmpl["spec"]
    check(pod.get("hostNetwork") is True, "hostNetwork must be true (TFTP TIDs, no NAT)")
    grace = config.get("shutdown", {}).get("grace_period_secs", 10)
    check(pod.get("terminationGracePeriodSeconds", 30) > grace,
          f"terminationGracePeriodSeconds must exceed shutdown.grace_period_secs ({grace})")

    port = metrics_port(config)
    ann = tmpl["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true", "prometheus.io/scrape annotation missing")
    check(ann.get("prometheus.io/port") == str(port),
          f"prometheus.io/port is {ann.get('prometheus.io/port')}, metrics.listen port is {port}")
    check(ann.get("prometheus.io/path") == "/metrics", "prometheus.io/path must be /metrics")

    (c,) = pod["containers"]
    ports = {p["name"]: p for p in c["ports"]}
    check(ports.get("metrics", {}).get("containerPort") == port,
          f"container port 'metrics' must be {port}")
    tftp_ports = {int(a.rsplit(":", 1)[1]) for a in config["listen"]}
    check(ports.get("tftp", {}).get("containerPort") in tftp_ports
          and ports["tftp"].get("protocol") == "UDP",
          f"container port 'tftp' must be UDP {sorted(tftp_ports)}")
    live = c.get("livenessProbe", {}).get("exec", {}).get("command")
    check(live == ["/usr/sbin/tftpd", "health"],
          f"livenessProbe must run tftpd health (it reads the ConfigMap's metrics.listen), not {live}")
    get = c.get("readinessProbe", {}).get("httpGet", {})
    check(get.get("path") == "/metrics" and get.get("port") in ("metrics", port),
          "readinessProbe must GET /metrics on the metrics port")

    sc = c["securityContext"]
    check(sc["capabilities"].get("drop") == ["ALL"], "capabilities must drop ALL")
    added = set(sc["capabilities"].get("add", []))
    check(added == caps,
          f"capabilities {sorted(added)} differ from tftpd.service's {sorted(caps)}")
    check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false")
    check(sc.get("privileged") is not True, "the container must not be privileged")
    res = c.get("resources", {})
    check(res.get("requests") and res.get("limits"), "resource requests and limits missing")

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    bpf = mounts.get("/sys/fs/bpf")
    check(bpf is not None
          and volumes[bpf["name"]].get("hostPath", {}).get("path") == "/sys/fs/bpf",
          "/sys/fs/bpf must be mounted from the host's /sys/fs/bpf")
    cfg = mounts.get("/etc/tftpd")
    check(cfg is not None
          and volumes[cfg["name"]].get("configMap", {}).get("name") == cm["metadata"]["name"],
          "/etc/tftpd must be the ConfigMap")
    check(c.get("args") == ["--config", "/etc/tftpd/tftpd.toml"],
          "args must be --config /etc/tftpd/tftpd.toml")
    check(config["root"] in mounts, f"the served root {config['root']} has no volume")


def check_containerfile(config, caps):
    text = CONTAINERFILE.read_text()
    port = metrics_port(config)
    check(re.search(r"^ARG BASE=docker\.io/library/debian:trixie-slim$", text, re.M)
          and re.search(r"^FROM \$\{BASE\}$", text, re.M),
          "the image must be FROM ${BASE}, by default debian:trixie-slim (Debian 13)")
    check("COPY tftpd.toml /etc/tftpd/tftpd.toml" in text
          and '"docs/examples/container.toml"' in CONTAINER_TASK.read_text(),
          "the image must install docs/examples/container.toml (staged by the container task) "
          "as /etc/tftpd/tftpd.toml")
    expose = re.search(r"^EXPOSE (.*)$", text, re.M)
    exposed = set(expose.group(1).split()) if expose else set()
    lo, hi = config["port_range"].split("-")
    for want in ("69/udp", f"{lo}-{hi}/udp", f"{port}/tcp"):
        check(want in exposed, f"EXPOSE lacks {want}")
    check(re.search(r'^    CMD \["/usr/sbin/tftpd", "health"\]$', text, re.M),
          "the HEALTHCHECK must run tftpd health (it reads metrics.listen from the config)")
    cap_add = re.search(r"--cap-add (\S+)", text)
    documented = set(cap_add.group(1).split(",")) if cap_add else set()
    check(documented == caps,
          f"the run example's --cap-add {sorted(documented)} differs from {sorted(caps)}")


def check_dashboard_queries():
    promtool = shutil.which("promtool")
    if promtool is None:
        print("check_dist: promtool is not installed: dashboard queries not parsed",
              file=sys.stderr)
        return
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    rules = []
    for i, expr in enumerate(exprs):
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        check("$" not in expr, f"dashboard query with an unknown variable: {expr}")
        rules.append({"record": f"dashboard:query_{i}:check", "expr": expr})
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
        f.flush()
        run = subprocess.run([promtool, "check", "rules", f.name],
                             capture_output=True, text=True)
    check(run.returncode == 0,
          f"promtool rejects a dashboard query:\n{run.stdout}{run.stderr}")
    check(len(exprs) > 0, "the dashboard has no queries")


def main():
    config_text = CONFIG.read_text()
    config = tomllib.loads(config_text)
    caps = unit_capabilities()
    check_daemonset(config_text, config, caps)
    check_containerfile(config, caps)
    check_dashboard_queries()
    if problems:
        for p in problems:
            print(f"check_dist: {p}", file=sys.stderr)
        sys.exit(1)
    print("check_dist: the Containerfile and the DaemonSet agree with the daemon's files; "
          "the dashboard's queries parse")


if __name__ == "__main__":
    main()
