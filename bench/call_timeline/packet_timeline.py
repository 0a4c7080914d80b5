"""Per-call packet timeline at c=1 from `tcpdump -tt -n -q` text: gaps between the gateway's
request, Redis, provider and answer packets (ports 8101 / 6379 / 18000). See README.md."""
import re, statistics, sys
ev = []
for line in open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/trace.txt"):
    m = re.match(r"(\d+\.\d+) IP 127\.0\.0\.1\.(\d+) > 127\.0\.0\.1\.(\d+): tcp (\d+)", line)
    if not m: continue
    t, s, d, n = float(m[1]), int(m[2]), int(m[3]), int(m[4])
    if n == 0: continue
    kind = {8101: "req", 6379: "redis>", 18000: "up>"}.get(d) or {8101: "resp", 6379: "<redis", 18000: "<up"}.get(s)
    ev.append((t, kind, n))
# segment per call at c=1: from a 'req' to the following 'resp'
calls, cur = [], None
for t, k, n in ev:
    if k == "req":
        cur = [(t, k, n)]; calls.append(cur)
    elif cur is not None:
        cur.append((t, k, n))
segs = {}
for c in calls:
    t0 = c[0][0]
    names = []
    prev = t0
    for t, k, n in c[1:]:
        names.append(k)
        segs.setdefault((len(names), k), []).append((t - prev) * 1e6)
        prev = t
print("calls", len(calls))
for (i, k), v in sorted(segs.items()):
    if len(v) > len(calls) * 0.5:
        print(f"{i:2d} {k:8s} n={len(v):4d} median gap {statistics.median(v):8.0f} us  p90 {sorted(v)[int(len(v)*.9)]:8.0f}")
