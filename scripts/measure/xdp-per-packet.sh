#!/usr/bin/env bash
# Nanoseconds the XDP program spends on one frame, by kind of frame, through the kernel's own
# test runner (BPF_PROG_TEST_RUN: `bpftool prog run ... repeat N`, no interface needed). Loads
# each object given (default: the one `cargo xtask build-ebpf` made), writes a settings map
# like the daemon's (listener 69, transfer ports 47300-47399, no rate limit), and prints the
# average per frame: an ACK to a transfer port, an RRQ, the same RRQ over IPv6 behind one
# destination-options header, and UDP to another port. Root; runs no traffic.
# Usage: sudo scripts/measure/xdp-per-packet.sh [OBJECT...]
set -euo pipefail
cd "$(dirname "$0")/../.."
objects=("$@")
[ ${#objects[@]} -gt 0 ] || objects=(tftp-ebpf/target/bpfel-unknown-none/release/tftp-ebpf)
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
dir=$(mktemp -d)
pins=/sys/fs/bpf/tftpd-xdp-per-packet-$$
trap 'rm -rf "$dir" "$pins"' EXIT
python3 - "$dir" <<'EOF'
import struct, sys
d = sys.argv[1]
def eth(t): return bytes([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]) + struct.pack('>H', t)
def udp(port, payload): return struct.pack('>HHHH', 40000, port, 8 + len(payload), 0) + payload
def ipv4(port, payload):
    u = udp(port, payload)
    return (eth(0x800) + bytes([0x45, 0]) + struct.pack('>H', 20 + len(u))
            + bytes([0, 1, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 7, 10, 0, 0, 1]) + u)
def ipv6_dest_opts(port, payload):
    rest = bytes([17, 0, 1, 4, 0, 0, 0, 0]) + udp(port, payload)
    return (eth(0x86dd) + bytes([0x60, 0, 0, 0]) + struct.pack('>H', len(rest)) + bytes([60, 64])
            + bytes([0xfd] + [0] * 14 + [9]) + bytes([0xfd] + [0] * 14 + [1]) + rest)
rrq = b'\0\x01pxelinux.0\0octet\0blksize\x001428\0'
frames = {'ack': ipv4(47350, b'\0\x04\0\x01'), 'rrq': ipv4(69, rrq),
          'rrq-v6-ext-header': ipv6_dest_opts(69, rrq), 'other-port': ipv4(53, b'x' * 40)}
for name, f in frames.items():
    open(f'{d}/{name}.bin', 'wb').write(f)
# XdpConfig: 4 listening ports, transfer range, max_blksize, single_port, rate prefixes v4/v6,
# rate interval and tolerance (0: no limit).
cfg = struct.pack('<4HHHIIHHQQ', 69, 0, 0, 0, 47300, 47399, 1428, 0, 32, 64, 0, 0)
open(f'{d}/config.hex', 'w').write(' '.join(f'{b:02x}' for b in cfg))
EOF
for obj in "${objects[@]}"; do
  mkdir -p "$pins/prog" "$pins/maps"
  bpftool prog loadall "$obj" "$pins/prog" pinmaps "$pins/maps" > /dev/null
  bpftool map update pinned "$pins/maps/XDP_CONFIG" key hex 00 00 00 00 value hex $(cat "$dir/config.hex")
  line="$obj:"
  for f in ack rrq rrq-v6-ext-header other-port; do
    ns=$(bpftool prog run pinned "$pins/prog/tftp_xdp" data_in "$dir/$f.bin" repeat 2000000 \
      | sed -n 's/.*average): \([0-9]*\)ns.*/\1/p')
    line="$line $f ${ns} ns"
  done
  echo "$line"
  rm -rf "$pins"
done
