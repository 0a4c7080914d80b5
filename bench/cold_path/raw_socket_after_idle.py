import socket, time, statistics, sys
s = socket.create_connection(("127.0.0.1", 6379)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for pause in (0, 0.001, 0.005, 0.02, 0.05):
    xs = []
    for _ in range(60):
        if pause: time.sleep(pause)
        t = time.perf_counter(); s.sendall(b"PING\r\n"); s.recv(100); xs.append(time.perf_counter() - t)
    print(f"raw socket, pause {pause*1000:.0f} ms: PING p50 {statistics.median(xs)*1e3:.3f} ms")
