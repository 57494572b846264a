#!/usr/bin/env python3
"""Reflection factor of one request from a source that never answers.

Sends one RRQ for FILE from SOURCE (a 127.x address on lo: it never answers, it only
counts) to SERVER, then counts every datagram that arrives for --seconds, and prints the
bytes out per byte in at IP level (+28 bytes per IPv4 datagram).

    python3 scripts/measure/reflect.py --server 127.0.0.1:6969 --file f.bin
    python3 scripts/measure/reflect.py --server 127.0.0.1:6969 --file f.bin --option blksize 1428
"""
import argparse
import socket
import struct
import time

OPCODES = {3: "DATA", 5: "ERROR", 6: "OACK"}

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--server", required=True, help="HOST:PORT")
ap.add_argument("--file", required=True)
ap.add_argument("--source", default="127.0.9.77")
ap.add_argument("--seconds", type=float, default=40.0)
ap.add_argument("--option", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
a = ap.parse_args()
host, port = a.server.rsplit(":", 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((a.source, 0))
req = b"\x00\x01" + a.file.encode() + b"\x00octet\x00"
for k, v in a.option:
    req += k.encode() + b"\x00" + v.encode() + b"\x00"
s.sendto(req, (host, int(port)))
s.settimeout(0.5)
got, total, end = [], 0, time.time() + a.seconds
while time.time() < end:
    try:
        d, _ = s.recvfrom(70000)
    except socket.timeout:
        continue
    got.append(OPCODES.get(struct.unpack("!H", d[:2])[0], "?"))
    total += len(d) + 28
print(
    f"request {len(req)} B ({len(req) + 28} B at IP level); received {len(got)} datagrams "
    f"{got}, {total} B at IP level: {total / (len(req) + 28):.1f}x"
)
