#!/usr/bin/env bash
# Windowed 64 MiB downloads (atftp, windowsize 16) from two release tftpd instances, one with
# UDP GSO and one without, alternating, three rounds, bytes verified. Prints MB/s per run and
# each daemon's CPU seconds over all its runs, so the GSO ratio comes from one run.
# Usage: scripts/measure/gso-window.sh [BLKSIZE...]   (default: 1428 8192)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p tftpd
dir=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
head -c 67108864 /dev/urandom > "$dir/64M.bin"; chmod 755 "$dir"; chmod 644 "$dir/64M.bin"
user=$(id -un)
printf '[performance.batching]\ngso = true\n' > "$dir/on.toml"
printf '[performance.batching]\ngso = false\n' > "$dir/off.toml"
./target/release/tftpd --config "$dir/on.toml" --root "$dir" --listen 127.0.0.1:7071 --user "$user" --ebpf off --log-level warn &
on=$!
./target/release/tftpd --config "$dir/off.toml" --root "$dir" --listen 127.0.0.1:7072 --user "$user" --ebpf off --log-level warn &
off=$!
sleep 1
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
blks=("$@"); [ ${#blks[@]} -gt 0 ] || blks=(1428 8192)
for blk in "${blks[@]}"; do
  for i in 1 2 3; do
    for s in "gso 7071 $on" "portable 7072 $off"; do
      set -- $s
      c0=$(cpu "$3"); t0=$(date +%s.%N)
      atftp --option "blksize $blk" --option "windowsize 16" -g -r 64M.bin -l "$dir/out.bin" 127.0.0.1 "$2" >/dev/null 2>&1
      t1=$(date +%s.%N); c1=$(cpu "$3")
      cmp -s "$dir/out.bin" "$dir/64M.bin" || { echo "MISMATCH from $1"; exit 1; }
      echo "$1 blksize $blk run$i: $(echo "67.108864 / ($t1 - $t0)" | bc -l | cut -c1-6) MB/s, daemon CPU $(echo "$c1 - $c0" | bc) s"
    done
  done
done
