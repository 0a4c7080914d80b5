"""Request-by-request interleaving at c=1 (ab.py --paired N): one keep-alive connection per
target, each round sends one request to every target in turn (direct first, then the
variants, order rotated every round), so that the machine's drift falls on all alike
within milliseconds rather than within a 6 s wrk round. Prints, per variant, the median
and p99 of its latency and the median of (variant - direct) over the rounds.

    paired_client.py BODY KEY ROUNDS name=http://127.0.0.1:PORT/path ...
"""

import json
import socket
import statistics
import sys
import time
from urllib.parse import urlsplit

body_path, key, rounds, *targets = sys.argv[1:]
body = open(body_path, "rb").read()  # noqa: SIM115
names, conns, requests = [], [], []
for target in targets:
    name, url = target.split("=", 1)
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    names.append(name)
    conns.append(sock)
    requests.append(
        (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.hostname}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
    )


def call(i: int) -> float:
    sock = conns[i]
    start = time.perf_counter()
    sock.sendall(requests[i])
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    if b"transfer-encoding: chunked" in head.lower():  # a stream: up to its last chunk
        while not rest.endswith(b"0\r\n\r\n"):
            rest += sock.recv(65536)
    else:
        length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        while len(rest) < length:
            rest += sock.recv(65536)
    elapsed = time.perf_counter() - start
    if status != b"200":
        raise SystemExit(f"{names[i]}: HTTP {status.decode()} {rest[:200]!r}")
    return elapsed * 1000


samples: dict[str, list[float]] = {name: [] for name in names}
for r in range(int(rounds)):
    order = list(range(len(names)))
    rest = order[1:]
    shift = r % len(rest)
    for i in [0, *rest[shift:], *rest[:shift]]:
        samples[names[i]].append(call(i))
direct = samples[names[0]]
out = {}
for name in names:
    values = samples[name]
    out[name] = {
        "p50": statistics.median(values),
        "p99": sorted(values)[int(len(values) * 0.99) - 1],
        "added_p50": statistics.median(v - d for v, d in zip(values, direct, strict=True)),
    }
print(json.dumps(out))
