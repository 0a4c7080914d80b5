-- Usage events queued by a gateway older than the stream (a Redis list) move into the
-- stream, each in one step (no event lost or doubled). They were charged against the old
-- balance keys, not counted as unbooked here.
-- KEYS: [1] the old list, [2] usage stream. ARGV: [1] batch. Returns how many moved.
local moved = 0
for _ = 1, tonumber(ARGV[1]) do
  local item = redis.call('LPOP', KEYS[1])
  if not item then break end
  local ok, event = pcall(cjson.decode, item)
  local org, cost = '', 0
  if ok and type(event) == 'table' then
    org = tostring(event['organization_id'] or '')
    cost = tonumber(event['cost_nanos']) or 0
  end
  redis.call('XADD', KEYS[2], '*', 'o', org, 'c', cost, 'u', 0, 'e', item)
  moved = moved + 1
end
return moved
