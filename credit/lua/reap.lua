-- Holds past their deadline belong to processes that died (a living one renews its
-- holds): what they did not spend goes back. The keys come from each hold's record, which
-- is kept a while: a call of a process taken for dead that settles after all is charged
-- once, from what the balance still has.
-- KEYS: [1] holds. ARGV: [1] now, [2] batch, [3] how long a record is kept.
-- Returns how many holds were returned.
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, name in ipairs(expired) do
  local hold = redis.call('HMGET', name, 'amount', 'spent', 'credit', 'spend')
  if hold[1] then
    give_back(hold[3], hold[4], tonumber(hold[1]) - tonumber(hold[2]))
    redis.call('EXPIRE', name, ARGV[3])
  end
  redis.call('ZREM', KEYS[1], name)
end
return #expired
