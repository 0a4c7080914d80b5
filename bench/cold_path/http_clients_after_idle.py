import asyncio, time, statistics, uvloop, aiohttp, httptools, orjson
BODY = orjson.dumps({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})
class P(asyncio.Protocol):
    def __init__(self): self.fut=None
    def connection_made(self,t): self.t=t
    def data_received(self,d): self.parser.feed_data(d)
    def on_body(self,b): self.body.append(b)
    def on_message_complete(self): self.fut.set_result(b"".join(self.body))
    def req(self):
        self.parser=httptools.HttpResponseParser(self); self.body=[]
        self.fut=asyncio.get_running_loop().create_future()
        self.t.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:18000\r\ncontent-type: application/json\r\nauthorization: Bearer x\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY))
        return self.fut
async def main():
    loop=asyncio.get_running_loop()
    _,p=await loop.create_connection(P,"127.0.0.1",18000)
    s=aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100), skip_auto_headers=("User-Agent",))
    xs,ys=[],[]
    for i in range(60):
        t=time.perf_counter(); await p.req(); xs.append(time.perf_counter()-t)
        t=time.perf_counter()
        r=await s.post("http://127.0.0.1:18000/v1/chat/completions", data=BODY, headers={"content-type":"application/json","authorization":"Bearer x"}); await r.read(); r.release()
        ys.append(time.perf_counter()-t)
    print(f"protocol p50 {statistics.median(xs[5:])*1e3:.3f} ms  aiohttp p50 {statistics.median(ys[5:])*1e3:.3f} ms")
    await s.close()
uvloop.run(main())
