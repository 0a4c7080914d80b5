# Cold-path syscall costs on this VM; pin with taskset -c 1. See README.md here.
import socket, time, statistics
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
a = socket.create_connection(l.getsockname()); a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); b, _ = l.accept()
def spin(us):
    end = time.perf_counter_ns() + us * 1000
    while time.perf_counter_ns() < end: pass
for spin_us in (0, 100, 300, 1000, 3000):
    ts = []
    for i in range(60):
        time.sleep(0.05)
        spin(spin_us)
        c0 = time.thread_time_ns(); a.send(b"x" * 30); ts.append((time.thread_time_ns() - c0) / 1e3)
        b.recv(100)
    print(f"spin {spin_us:5d} us before send: send cpu median {statistics.median(ts):.0f} us")
# a send right after another send (kernel path warm)
ts=[]
for i in range(60):
    time.sleep(0.05)
    a.send(b"y"); b.recv(10)
    c0 = time.thread_time_ns(); a.send(b"x" * 30); ts.append((time.thread_time_ns() - c0) / 1e3); b.recv(100)
print(f"second send after idle: {statistics.median(ts):.0f} us")
