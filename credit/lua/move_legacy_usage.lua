-- Usage queued by an older version moves into the shards' streams, each entry in one step
-- (none lost or doubled): events of a gateway older than the stream (a Redis list: charged
-- against the old balance keys, not counted as unbooked here), or entries of the stream
-- before the shards (with their charge and unbooked count; an entry a drainer had read and
-- not acknowledged is booked again, which its request id makes harmless). Single Redis
-- only: the keys span the shards' slots.
-- KEYS: [1] the old list or stream, then the shards' usage streams in shard order.
-- ARGV: [1] batch, [2] 'list' or 'stream'. Returns how many moved.
local shards = #KEYS - 1
local function stream_of(org)
  local id = tonumber(org)
  if not id then return KEYS[2] end
  return KEYS[2 + id % shards]
end
local moved = 0
if ARGV[2] == 'list' then
  for _ = 1, tonumber(ARGV[1]) do
    local item = redis.call('LPOP', KEYS[1])
    if not item then break end
    local ok, event = pcall(cjson.decode, item)
    local org, cost = '', 0
    if ok and type(event) == 'table' then
      org = tostring(event['organization_id'] or '')
      cost = tonumber(event['cost_nanos']) or 0
    end
    redis.call('XADD', stream_of(org), '*', 'o', org, 'c', cost, 'u', 0, 'e', item)
    moved = moved + 1
  end
  return moved
end
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[1])) do
  local fields, org = entry[2], ''
  for i = 1, #fields, 2 do
    if fields[i] == 'o' then org = fields[i + 1] end
  end
  if #fields > 0 then
    redis.call('XADD', stream_of(org), '*', unpack(fields))
  end
  redis.call('XDEL', KEYS[1], entry[1])
  moved = moved + 1
end
if redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return moved
