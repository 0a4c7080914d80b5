# Cold-path syscall costs on this VM; pin with taskset -c 1. See README.md here.
import socket, time, statistics, sys, os
idle = 0.05
def measure(s, label, n=100):
    cmd = b"x" * 30
    ts = []
    for i in range(n):
        time.sleep(idle)
        c0 = time.thread_time_ns()
        s.send(cmd)
        ts.append((time.thread_time_ns() - c0) / 1e3)
    print(f"{label}: send() cpu median {statistics.median(ts):.0f} us")
# TCP loopback, receiver in this process, never reads (no wakeup of anyone)
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
a = socket.create_connection(l.getsockname()); a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); b, _ = l.accept()
measure(a, "tcp loopback, no waiting receiver")
# unix socket, no receiver waiting
u1, u2 = socket.socketpair()
measure(u1, "unix socketpair, no waiting receiver")
# tcp loopback with a receiver process blocked in recv on the other CPU
pid = os.fork()
if pid == 0:
    os.sched_setaffinity(0, {0})
    while b.recv(100): pass
    os._exit(0)
measure(a, "tcp loopback, receiver blocked on CPU0")
pid2 = os.fork()
if pid2 == 0:
    os.sched_setaffinity(0, {0})
    while u2.recv(100): pass
    os._exit(0)
measure(u1, "unix, receiver blocked on CPU0")
a.close(); u1.close()
