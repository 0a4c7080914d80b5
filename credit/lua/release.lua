-- A lease is given back once its calls have settled: what it did not spend returns to the
-- balance, and the requests it did not use leave the windows that counted them.
-- KEYS: [1] holds, [2] the hold, [3] organization credit, then the request windows.
-- ARGV: [1] requests not used, [2] the second they were counted in, [3] how long its
-- record is kept (its calls' settlements sent again find it).
-- Returns 1, or 0 if the hold had been reaped already.
local held = 0
if redis.call('ZSCORE', KEYS[1], KEYS[2]) then
  local hold = redis.call('HMGET', KEYS[2], 'amount', 'spent', 'spend')
  give_back(KEYS[3], hold[3], tonumber(hold[1]) - tonumber(hold[2]))
  redis.call('ZREM', KEYS[1], KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])  -- kept for a settlement sent again
  held = 1
end
local unused = tonumber(ARGV[1])
if unused > 0 then
  for i = 4, #KEYS do
    if redis.call('HEXISTS', KEYS[i], 'r' .. ARGV[2]) == 1 then  -- the second still counts
      redis.call('HINCRBY', KEYS[i], 'r' .. ARGV[2], 0 - unused)
      redis.call('HINCRBY', KEYS[i], 'R', 0 - unused)
    end
  end
end
return held
