#!/usr/bin/env bash
# The [performance.file_io] fast paths (cache, fadvise) and the transfer lanes against the portable path
# in one run: one release tftpd per setting, tftp-load against each in turn, every byte
# verified; prints median MB/s, daemon CPU s/GiB and their ratios, then syscalls per MiB.
# Needs strace. Usage: scripts/measure/file-io.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p tftpd -p tftpd-benches --bin tftpd --bin tftp-load
exec python3 scripts/measure/file_io.py "$@"
