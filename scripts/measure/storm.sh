#!/usr/bin/env bash
# Boot storm: 500 clients fetch one 64 KiB file at once from a release tftpd on loopback.
# Usage: scripts/measure/storm.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-500}
cargo build --release -q -p tftpd
dir=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
head -c 65536 /dev/urandom > "$dir/storm.bin"; chmod 755 "$dir"; chmod 644 "$dir/storm.bin"
./target/release/tftpd --root "$dir" --listen 127.0.0.1:7072 --user "$(id -un)" --ebpf off \
  --log-level warn &
sleep 1
python3 scripts/measure/storm.py 127.0.0.1 7072 storm.bin "$dir/storm.bin" "$n"
