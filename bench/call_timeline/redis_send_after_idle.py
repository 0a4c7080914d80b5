# Cold-path syscall costs on this VM; pin with taskset -c 1. See README.md here.
import socket, time, statistics, sys
idle = float(sys.argv[1]) if len(sys.argv) > 1 else 0.05
s = socket.create_connection(("127.0.0.1", 6379)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
cmd = b"*1\r\n$4\r\nPING\r\n"
send_t, rtt_t, cpu_t = [], [], []
for i in range(200):
    time.sleep(idle)
    c0 = time.thread_time_ns(); t0 = time.perf_counter_ns()
    s.send(cmd)
    t1 = time.perf_counter_ns(); c1 = time.thread_time_ns()
    s.recv(100)
    t2 = time.perf_counter_ns()
    send_t.append((t1 - t0) / 1e3); rtt_t.append((t2 - t0) / 1e3); cpu_t.append((c1-c0)/1e3)
print(f"idle {idle*1e3:.0f} ms: send() median {statistics.median(send_t):.0f} us (cpu {statistics.median(cpu_t):.0f}), rtt median {statistics.median(rtt_t):.0f} us")
