#!/usr/bin/env bash
# Listener fast paths (issue #5, ADR 0017): a boot storm of N clients (tftp-load get, every
# byte verified) against four release tftpd instances on loopback, alternating, R rounds:
#   portable   recv_batch = 1, reuseport_workers = 1 (the default)
#   recvmmsg   recv_batch = 32
#   reuseport  reuseport_workers = 0 (one socket per CPU)
#   both       recvmmsg and reuseport_workers = 0
# Per run: init p99 (request to first DATA), storm duration, UDP RcvbufErrors delta
# (/proc/net/snmp, host-wide: nothing else may run), daemon CPU (utime+stime from
# /proc/PID/stat). Then the medians and each one's ratio to portable.
# RECV_BUFFER=<bytes> sets performance.socket.recv_buffer on all four (default: tftpd's
# 2 MiB; 0 = the kernel default, about 208 KiB, where a storm overflows the listener).
# At the end, the recvmmsg daemons' requests per receive call (from /metrics).
# Usage: [RECV_BUFFER=N] scripts/measure/listen-fast.sh [CLIENTS] [ROUNDS] [FILE_BYTES]
#        (default 1000 5 32768)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000}; rounds=${2:-5}; size=${3:-32768}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p tftpd
cargo build --release -q -p tftpd-benches --bin tftp-load
dir=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
head -c "$size" /dev/urandom > "$dir/boot.bin"; chmod 755 "$dir"; chmod 644 "$dir/boot.bin"
user=$(id -un)
declare -A port pid
p=7181
for mode in portable recvmmsg reuseport both; do
  batching=''; sock=''
  case $mode in
    recvmmsg)  batching=$'recv_batch = 32\n' ;;
    reuseport) sock=$'reuseport_workers = 0\n' ;;
    both)      batching=$'recv_batch = 32\n'; sock=$'reuseport_workers = 0\n' ;;
  esac
  [ -z "${RECV_BUFFER:-}" ] || sock+="recv_buffer = $RECV_BUFFER"$'\n'
  printf '[limits]\nmax_transfers = 4000\nmax_transfers_per_client = 4000\n[performance.batching]\n%s[performance.socket]\n%s' \
    "$batching" "$sock" > "$dir/$mode.toml"
  "$target/release/tftpd" --config "$dir/$mode.toml" --root "$dir" --listen "127.0.0.1:$p" \
    --metrics-listen "127.0.0.1:$((p + 1000))" --user "$user" --ebpf off --log-level warn &
  pid[$mode]=$!; port[$mode]=$p; p=$((p + 1))
done
sleep 1
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # clock ticks
rcvbuf() { awk '/^Udp:/ { if (h) { print $6; exit } h = 1 }' /proc/net/snmp; }
tick=$(getconf CLK_TCK)
out="$dir/runs.tsv"
for r in $(seq 1 "$rounds"); do
  for mode in portable recvmmsg reuseport both; do
    c0=$(cpu "${pid[$mode]}"); e0=$(rcvbuf)
    "$target/release/tftp-load" get --server "127.0.0.1:${port[$mode]}" --file boot.bin \
      --verify "$dir/boot.bin" --clients "$n" --blksize 1428 --json > "$dir/r.json"
    c1=$(cpu "${pid[$mode]}"); e1=$(rcvbuf)
    python3 - "$dir/r.json" "$mode" "$r" "$(( c1 - c0 ))" "$tick" "$(( e1 - e0 ))" >> "$out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); mode, r, ticks, tick, errs = sys.argv[2:7]
fails = sum(j["failures"].values())
print(f"{mode}\t{r}\t{j['init_latency']['p99_ms']:.2f}\t{j['wall_secs']:.3f}\t{errs}\t"
      f"{int(ticks) / int(tick):.2f}\t{j['ok']}\t{fails}")
PY
    tail -1 "$out" | awk -F'\t' '{printf "%-9s round %s: init p99 %s ms, storm %s s, RcvbufErrors +%s, daemon CPU %s s, ok %s, failed %s\n", $1, $2, $3, $4, $5, $6, $7, $8}'
  done
done
python3 - "$out" <<'PY'
import statistics as st, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
med = {}
for m in ["portable", "recvmmsg", "reuseport", "both"]:
    rs = [r for r in rows if r[0] == m]
    med[m] = [st.median(float(r[i]) for r in rs) for i in (2, 3, 4, 5)]
print("\nmedians (ratio to portable): init p99 ms, storm s, RcvbufErrors, daemon CPU s")
b = med["portable"]
for m, v in med.items():
    ratio = lambda i: f"{v[i] / b[i]:.2f}" if b[i] else "-"
    print(f"{m:<9} {v[0]:8.2f} ({ratio(0)})  {v[1]:6.3f} ({ratio(1)})  {v[2]:6.0f} ({ratio(2)})  {v[3]:6.2f} ({ratio(3)})")
PY
for mode in recvmmsg both; do
  curl -s "http://127.0.0.1:$((port[$mode] + 1000))/metrics" | awk -v m="$mode" '
    /^tftpd_listener_receive_calls_total\{method="recvmmsg"\}/ { c = $2 }
    /^tftpd_listener_datagrams_total / { d = $2 }
    END { if (c) printf "%s: %d datagrams in %d recvmmsg calls, %.2f per call\n", m, d, c, d / c }'
done
