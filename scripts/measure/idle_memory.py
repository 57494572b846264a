# Opens N transfers that receive DATA 1 and never ACK; reports the daemon's RSS growth per transfer.
import socket, struct, sys, time, subprocess
N = int(sys.argv[1]); port = int(sys.argv[2]); pid = int(sys.argv[3]); blk = sys.argv[4]
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])
before = rss()
socks = []
for i in range(N):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
    opts = b"" if blk == "512" else b"blksize\0" + blk.encode() + b"\0"
    s.sendto(b"\0\x01f.bin\0octet\0" + opts, ("127.0.0.1", port))
    d, addr = s.recvfrom(70000)
    if d[:2] == b"\0\x06":
        s.sendto(b"\0\x04\0\0", addr); d, addr = s.recvfrom(70000)
    assert d[:4] == b"\0\x03\0\x01", d[:4]
    socks.append(s)
time.sleep(1)
after = rss()
print(f"blksize {blk}: {N} idle transfers: RSS {before} KiB -> {after} KiB = {(after-before)*1024/N:.0f} bytes per transfer")
