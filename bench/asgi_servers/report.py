import json
import statistics

R = json.load(open("/tmp/asgi-bench/results.json"))
med = statistics.median
lines = []
lines.append(
    "| server | app | conc | req/s (median of 2) | req/s runs | p50 ms | p99 ms | RSS MiB after load | startup to first 200 (s) |"
)
lines.append("|---|---|---:|---:|---|---:|---:|---:|---:|")
for r in R:
    rss = sum(r["rss_kib"].values()) / 1024
    rss_s = f"{rss:.1f}"
    if len(r["rss_kib"]) > 1:
        rss_s += " (" + " + ".join(f"{v / 1024:.1f}" for v in r["rss_kib"].values()) + ")"
    st = med(r["startup_s"])
    for c in r["cells"]:
        reps = c["reps"]
        rps = [x["rps"] for x in reps]
        lines.append(
            f"| {r['server']} | {r['app']} | {c['conc']} | {med(rps):,.0f} | {' / '.join(f'{x:,.0f}' for x in rps)} | "
            f"{med([x['p50'] for x in reps]):.2f} | {med([x['p99'] for x in reps]):.2f} | {rss_s} | {st:.3f} |"
        )
print("\n".join(lines))
print()
print(
    "ERRORS:",
    [
        (r["server"], r["app"], c["conc"], x["non2xx"], x["sock_err"])
        for r in R
        for c in r["cells"]
        for x in c["reps"]
        if x["non2xx"] or x["sock_err"]
    ],
)
print("startup raw:", [(r["server"], r["app"], [round(s, 3) for s in r["startup_s"]]) for r in R])
print(
    "requests:",
    [
        (r["server"], r["app"], c["conc"], [x["requests"] for x in c["reps"]])
        for r in R
        for c in r["cells"]
    ],
)
