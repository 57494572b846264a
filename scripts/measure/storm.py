# A boot storm: N lock-step clients start at once and download one file; every byte is checked.
# Usage: python3 storm.py HOST PORT NAME LOCAL_COPY N
import socket, struct, sys, threading, time

host, port, name, local, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
want = open(local, "rb").read()
ok, fail = [0], []
lock = threading.Lock()


def one(i):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(b"\x00\x01" + name.encode() + b"\x00octet\x00", (host, port))
    got, expected = b"", 1
    try:
        while True:
            d, addr = s.recvfrom(2000)
            op, blk = struct.unpack("!HH", d[:4])
            if op != 3:
                raise RuntimeError(f"opcode {op}: {d[4:40]!r}")
            if blk == expected % 65536:
                got += d[4:]
                s.sendto(struct.pack("!HH", 4, blk), addr)
                expected += 1
                if len(d) - 4 < 512:
                    break
        if got != want:
            raise RuntimeError("bytes differ")
        with lock:
            ok[0] += 1
    except Exception as e:  # a failure of any kind is counted, not raised
        with lock:
            fail.append((i, str(e)))


t0 = time.time()
threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"{ok[0]}/{n} transfers ok in {time.time() - t0:.1f} s; failures: {len(fail)} {fail[:3]}")
sys.exit(0 if not fail else 1)
