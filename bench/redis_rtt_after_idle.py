# Redis PING round trip when hot vs after 50 ms idle (the VM wake-up cost); see README Performance.
import asyncio, time, statistics
import uvloop, redis.asyncio as r
async def main():
    c = r.Redis.from_url("redis://127.0.0.1:6379/2")
    await c.ping()
    for pause in (0, 0.05):
        xs = []
        for _ in range(60):
            if pause: await asyncio.sleep(pause)
            t = time.perf_counter(); await c.ping(); xs.append(time.perf_counter() - t)
        print(f"pause {pause*1000:.0f} ms: PING p50 {statistics.median(xs)*1e3:.3f} ms")
uvloop.run(main())
