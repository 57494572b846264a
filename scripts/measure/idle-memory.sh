#!/usr/bin/env bash
# Memory per idle transfer: 1000 transfers that received DATA 1 and never ACK, per blksize;
# prints the daemon's RSS growth per transfer. Usage: scripts/measure/idle-memory.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p tftpd
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
head -c 1000000 /dev/urandom > "$dir/f.bin"; chmod 755 "$dir"; chmod 644 "$dir/f.bin"
printf '[protocol]\ntimeout_ms = 60000\nmax_retries = 100\n[limits]\nmax_transfers = 5000\nmax_transfers_per_client = 5000\n' > "$dir/idle.toml"
user=$(id -un)
for blk in 512 1428 8192 65464; do
  ./target/release/tftpd --config "$dir/idle.toml" --root "$dir" --listen 127.0.0.1:7071 \
    --user "$user" --log-level warn 2>/dev/null &
  pid=$!
  sleep 0.5
  python3 scripts/measure/idle_memory.py 1000 7071 "$pid" "$blk"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
