# Cold-path syscall costs on this VM; pin with taskset -c 1. See README.md here.
import os, time, statistics
def m(n):
    t0 = time.perf_counter_ns()
    for _ in range(n): os.getpid()
    return (time.perf_counter_ns() - t0) / n
print("hot getpid ns", statistics.median(m(10000) for _ in range(5)))
ts = []
for i in range(100):
    time.sleep(0.05)
    t0 = time.perf_counter_ns(); os.getpid(); t1 = time.perf_counter_ns()
    for _ in range(14): os.getpid()
    t2 = time.perf_counter_ns()
    ts.append(((t1 - t0), (t2 - t1) / 14))
print("after 50 ms idle: first getpid ns", statistics.median(x[0] for x in ts), "next 14 each", statistics.median(x[1] for x in ts))
t0=time.perf_counter_ns()
for _ in range(10000): time.perf_counter_ns()
print("perf_counter ns", (time.perf_counter_ns()-t0)/10000)
