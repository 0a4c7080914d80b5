-- Usage entries booked in the ledger are acknowledged and deleted. An entry acknowledged
-- for the first time (XACK says 1) leaves its organization's unbooked total, so a batch
-- booked and acknowledged twice (two drainers) counts once.
-- KEYS: [1] a shard's usage stream, then each entry's organization credit (the stream
-- again if none).
-- ARGV: [1] group, then per entry: id, the charge it counted as unbooked (0 if none).
-- Returns how many entries were acknowledged for the first time.
local acked = 0
for i = 2, #KEYS do
  local id, counted = ARGV[2 * i - 2], tonumber(ARGV[2 * i - 1])
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    acked = acked + 1
    if counted > 0 and KEYS[i] ~= KEYS[1] and redis.call('EXISTS', KEYS[i]) == 1 then
      redis.call('HINCRBY', KEYS[i], 'unbooked', 0 - counted)
    end
  end
  redis.call('XDEL', KEYS[1], id)
end
return acked
