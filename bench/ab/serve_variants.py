# Variant runner for ab.py (docs/benchmarks/cold-path-experiments.md, "The reservation's round trip"):
# VARIANT=base | noproxy | cheap_script | no_reserve | parallel_reserve (the last two are
# upper bounds, not shippable: no reservation at all; the provider called before the reply).
import os, sys, asyncio, time
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexeon.settings")
import uvicorn
V = os.environ.get("VARIANT", "base")
import nexeon.asgi as asgi
if V == "cheap_script":
    from apigateway import quota
    quota.RESERVE_SCRIPT = """
local t = redis.call('TIME')
local now_s = tonumber(t[1])
local hold = ARGV[7] .. '|' .. ARGV[8] .. '|' .. ARGV[6] .. '|'
redis.call('ZADD', KEYS[4], ARGV[9], hold)
return {1, redis.call('DECRBY', KEYS[3], ARGV[6]), hold, 1000000, 999999, 0, 0, 60000, now_s}
"""
if V == "no_reserve":
    from apigateway import quota
    from apigateway.ratelimit import RateInfo
    async def reserve(self, *, key, amount_nanos, request_id, tokens=0):
        rate = RateInfo(10_000_000, 9_999_999, 0, 0, 60000, int(time.time()), tokens)
        return quota.Reservation(key.organization_id, amount_nanos, key.key_id,
                                 f"{request_id}|{key.organization_id}|{amount_nanos}|", rate=rate)
    quota.RedisQuota.reserve = reserve
if V == "parallel_reserve":
    from apigateway import relay, http
    from billing import pricing
    orig = relay.chat
    async def chat(call, send, receive, headers):
        if call.body.get("stream"):
            return await orig(call, send, receive, headers)
        upstream = relay.upstream_requests(call, lambda route: route.adapter.build_chat_request(call.body, route.deployment))
        n = call.body.get("n") or 1
        fetch = asyncio.ensure_future(http.fetch(upstream))
        reservation = await relay.reserve(call, pricing.max_cost_nanos(call.entry.prices, body_bytes=call.body_bytes, max_output_tokens=relay.max_output_tokens(call) * n), headers, relay.chat_token_estimate(call))
        route, data = await fetch
        payload, usage = route.adapter.parse_chat_response(data, model=call.entry.id, deployment=route.deployment)
        call.log.usage = usage
        cost = relay.usage_cost(call.entry, usage)
        await relay._answer(call, headers, reservation, payload, cost)
    relay.chat = chat
uvicorn.run(asgi.application, host="127.0.0.1", port=int(os.environ["PORT"]), loop="uvloop", http="httptools",
            access_log=False, lifespan="on", log_level="warning", proxy_headers=(V != "noproxy"))
