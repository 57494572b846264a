#!/usr/bin/env bash
# One 64 MiB download at blksize 1428 with curl: tftpd against tftp-hpa's in.tftpd (when
# installed), alternating, three rounds, bytes verified. Prints curl's speed per run.
# Usage: scripts/measure/download-64m.sh   (in.tftpd needs root to run as `nobody`)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p tftpd
dir=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
head -c 67108864 /dev/urandom > "$dir/64M.bin"; chmod 755 "$dir"; chmod 644 "$dir/64M.bin"
user=$(id -un)
./target/release/tftpd --root "$dir" --listen 127.0.0.1:7069 --user "$user" --log-level warn &
servers=("tftpd 7069")
if command -v in.tftpd >/dev/null; then
  in.tftpd -L -s "$dir" -a 127.0.0.1:7070 -u "$user" -B 65464 &
  servers+=("in.tftpd 7070")
fi
sleep 1
for i in 1 2 3; do
  for s in "${servers[@]}"; do
    set -- $s
    curl -sS --tftp-blksize 1428 "tftp://127.0.0.1:$2/64M.bin" -o "$dir/out.bin" \
      -w "$1 run$i %{speed_download} B/s %{time_total} s\n"
    cmp -s "$dir/out.bin" "$dir/64M.bin" || { echo "MISMATCH from $1"; exit 1; }
  done
done
