-- Check a call's rate limits and reserve its maximum cost as a hold (or, with a count
-- above 1, a lease: one hold for several calls), in one step.
-- KEYS: [1] key window, [2] organization window, [3] organization credit, [4] its shard's
--       holds, [5] the new hold, [6] the key's spend counter this month (with a limit;
--       else the hold again, unread)
-- ARGV: [1] key rpm, [2] key tpm, [3] org rpm, [4] org tpm (0: no limit),
--       [5] token estimate, [6] amount, [7] organization id, [8] hold deadline,
--       [9] monthly spend limit ('' for none), [10] requests to count, [11] key id,
--       [12] time (unix seconds, '' for Redis's clock: the same for every replica)
-- Returns {1, available left, request limit, requests left, token limit, tokens left,
--          ms until the windows are back to their initial state, second counted in}
--   {-1, ms to wait, subject (1 key, 2 organization), unit (1 requests, 2 tokens), limit}
--   {-2}: balance not loaded; {-4}: spend counter not loaded (load it, call again;
--         nothing was counted)
--   {-3, available}: short of credit; {-5, spent}: over the spend limit. Both still
--         count as requests (they were made), but not as tokens.
local now = clock(ARGV[12])
local now_s = math.floor(now)
local oldest = now_s - 60
local tokens = tonumber(ARGV[5])
local amount = tonumber(ARGV[6])
local count = tonumber(ARGV[10])

local subjects = {}
for i = 1, 2 do
  local rpm, tpm = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  if rpm > 0 or tpm > 0 then
    local requests, toks = advance(KEYS[i], oldest)
    if rpm > 0 and requests + count > rpm then
      return {-1, wait_ms(KEYS[i], 'r', requests + count - rpm, oldest, now), i, 1, rpm}
    end
    if tpm > 0 and toks + tokens > tpm then
      return {-1, wait_ms(KEYS[i], 't', toks + tokens - tpm, oldest, now), i, 2, tpm}
    end
    subjects[#subjects + 1] = {KEYS[i], rpm, tpm, requests, toks}
  end
end

local available = tonumber(redis.call('HGET', KEYS[3], 'available'))
if not available then return {-2} end
if count > 1 and available < amount then
  return {-3, available}  -- a lease short of credit counts no requests
end
local spend_limit = tonumber(ARGV[9])
local spent = 0
if spend_limit then
  spent = tonumber(redis.call('GET', KEYS[6]))
  if not spent then return {-4} end
end

local req_limit, req_left, tok_limit, tok_left = 0, 0, 0, 0
for _, w in ipairs(subjects) do
  count_requests(w[1], now_s, oldest, count)
  if w[2] > 0 and (req_limit == 0 or w[2] - w[4] - count < req_left) then
    req_limit, req_left = w[2], w[2] - w[4] - count
  end
end

-- (a call that costs nothing, such as the demo model's, needs no credit)
if amount > 0 and (available <= 0 or available < amount) then return {-3, available} end
local spend = ''
if spend_limit then
  if spent + amount > spend_limit then return {-5, spent} end
  redis.call('INCRBY', KEYS[6], amount)
  spend = KEYS[6]
end
for _, w in ipairs(subjects) do
  if w[3] > 0 then
    if tokens > 0 then count_tokens(w[1], now_s, tokens) end
    if tok_limit == 0 or w[3] - w[5] - tokens < tok_left then
      tok_limit, tok_left = w[3], math.max(w[3] - w[5] - tokens, 0)
    end
  end
end

redis.call('HSET', KEYS[5], 'organization', ARGV[7], 'key', ARGV[11], 'amount', amount,
           'spent', 0, 'credit', KEYS[3], 'spend', spend)
redis.call('ZADD', KEYS[4], ARGV[8], KEYS[5])
redis.call('HINCRBY', KEYS[3], 'held', amount)
local left = redis.call('HINCRBY', KEYS[3], 'available', 0 - amount)
return {1, left, req_limit, req_left, tok_limit, tok_left,
        math.ceil((now_s + 61 - now) * 1000), now_s}
