-- A call has ended: charge what it cost against its hold, queue its usage event, and with
-- close = 1 give back what the hold did not spend. A call never costs more than it
-- reserved (its cap), and a call whose hold was reaped meanwhile (its process was taken
-- for dead) is charged only what the balance still has, so no balance goes below zero.
-- A settlement sent again (its reply was lost with the connection) changes nothing: the
-- hold's record remembers each call it charged, for `keep` seconds after it closed.
-- KEYS: [1] the shard's holds, [2] the hold, [3] organization credit, [4] the key's spend
--       counter (the hold again if none), [5] the shard's usage stream, then the windows
--       that hold the call's token estimate
-- ARGV: [1] cost, [2] the call's cap, [3] close (1/0), [4] organization id, [5] event
--       ('' if none), [6] the call's id, [7] keep (seconds), and with windows: [8] the
--       second the call was counted in, [9] the tokens to add to it (the real count minus
--       the estimate)
-- Returns what was charged.
local call = 'call:' .. ARGV[6]
local spend = KEYS[4] ~= KEYS[2] and KEYS[4] or ''
local done = redis.call('HGET', KEYS[2], call)
if done then return tonumber(done) end
for i = 6, #KEYS do
  if redis.call('HEXISTS', KEYS[i], 'r' .. ARGV[8]) == 1 then  -- the second still counts
    redis.call('HINCRBY', KEYS[i], 't' .. ARGV[8], ARGV[9])
    redis.call('HINCRBY', KEYS[i], 'T', ARGV[9])
  end
end
local charge = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]))
local loaded = redis.call('EXISTS', KEYS[3]) == 1
local open = redis.call('ZSCORE', KEYS[1], KEYS[2])
if open then
  local spent = redis.call('HINCRBY', KEYS[2], 'spent', charge)
  if loaded then redis.call('HINCRBY', KEYS[3], 'held', 0 - charge) end
  if ARGV[3] == '1' then
    give_back(KEYS[3], spend, tonumber(redis.call('HGET', KEYS[2], 'amount')) - spent)
    redis.call('ZREM', KEYS[1], KEYS[2])
    redis.call('DEL', KEYS[2])
    open = false
  end
else
  if loaded then
    local available = tonumber(redis.call('HGET', KEYS[3], 'available'))
    charge = math.max(math.min(charge, available), 0)
    redis.call('HINCRBY', KEYS[3], 'available', 0 - charge)
  end
  if spend ~= '' and redis.call('EXISTS', spend) == 1 then
    redis.call('INCRBY', spend, charge)
  end
end
local counted = 0
if loaded and charge > 0 then
  redis.call('HINCRBY', KEYS[3], 'unbooked', charge)
  counted = 1
end
if ARGV[5] ~= '' then
  redis.call('XADD', KEYS[5], '*', 'o', ARGV[4], 'c', charge, 'u', counted, 'e', ARGV[5])
end
redis.call('HSET', KEYS[2], call, charge)
if not open then redis.call('EXPIRE', KEYS[2], ARGV[7]) end
return charge
