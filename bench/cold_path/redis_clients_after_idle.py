import asyncio, time, statistics, uvloop, hiredis
class P(asyncio.Protocol):
    def __init__(self): self.reader = hiredis.Reader(); self.waiters = []
    def connection_made(self, t): self.t = t
    def data_received(self, data):
        self.reader.feed(data)
        while (r := self.reader.gets()) is not False:
            self.waiters.pop(0).set_result(r)
    def call(self, raw):
        f = asyncio.get_running_loop().create_future(); self.waiters.append(f); self.t.write(raw); return f
async def main():
    loop = asyncio.get_running_loop()
    _, p = await loop.create_connection(P, "127.0.0.1", 6379)
    import redis.asyncio as r
    c = r.Redis.from_url("redis://127.0.0.1:6379/2"); await c.ping()
    for pause in (0, 0.05):
        xs, ys = [], []
        for _ in range(80):
            if pause: await asyncio.sleep(pause)
            t = time.perf_counter(); await p.call(b"*1\r\n$4\r\nPING\r\n"); xs.append(time.perf_counter() - t)
            if pause: await asyncio.sleep(pause)
            t = time.perf_counter(); await c.ping(); ys.append(time.perf_counter() - t)
        print(f"pause {pause*1000:.0f} ms: protocol PING p50 {statistics.median(xs)*1e3:.3f} ms, redis-py {statistics.median(ys)*1e3:.3f} ms")
uvloop.run(main())
