-- Sliding windows of requests and tokens per minute (credit/windows.py has the same rules
-- in Python). A window is a hash of one-second buckets: 'r<second>' requests and
-- 't<second>' tokens, running totals 'R' and 'T', and 'c', the oldest second that may
-- still hold counts. A request at second s is admitted only if seconds s-60 .. s leave
-- room. Prepended to the scripts that check or count (credit/scripts.py).

local function clock(given)
  local now = tonumber(given)
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  end
  return now
end

-- The window's totals once the seconds before `oldest` have left it.
local function advance(win, oldest)
  local state = redis.call('HMGET', win, 'c', 'R', 'T')
  local cursor = tonumber(state[1])
  if not cursor then return 0, 0 end
  local requests, toks = tonumber(state[2]) or 0, tonumber(state[3]) or 0
  if cursor >= oldest then return requests, toks end
  if cursor + 60 < oldest then
    redis.call('DEL', win)
    return 0, 0
  end
  local gone = {}
  for s = cursor, oldest - 1 do
    local v = redis.call('HMGET', win, 'r' .. s, 't' .. s)
    requests = requests - (tonumber(v[1]) or 0)
    toks = toks - (tonumber(v[2]) or 0)
    gone[#gone + 1] = 'r' .. s
    gone[#gone + 1] = 't' .. s
  end
  redis.call('HDEL', win, unpack(gone))
  redis.call('HSET', win, 'c', oldest, 'R', requests, 'T', toks)
  return requests, toks
end

-- Milliseconds until `excess` requests ('r') or tokens ('t') have left the window.
local function wait_ms(win, prefix, excess, oldest, now)
  local freed = 0
  for s = oldest, math.floor(now) do
    freed = freed + (tonumber(redis.call('HGET', win, prefix .. s)) or 0)
    if freed >= excess then return math.ceil((s + 61 - now) * 1000) end
  end
  return 61000
end

local function count_requests(win, second, oldest, count)
  redis.call('HSETNX', win, 'c', oldest)
  redis.call('HINCRBY', win, 'r' .. second, count)
  redis.call('HINCRBY', win, 'R', count)
  redis.call('PEXPIRE', win, 62000)
end

local function count_tokens(win, second, tokens)
  redis.call('HINCRBY', win, 't' .. second, tokens)
  redis.call('HINCRBY', win, 'T', tokens)
end
