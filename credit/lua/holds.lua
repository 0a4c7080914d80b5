-- A hold gives back what it did not spend (`rest`): to the organization's available
-- balance, out of its held credit, and out of the key's monthly spend counter if it was
-- counted there. Prepended to the scripts that close holds (credit/scripts.py).

local function give_back(credit, spend, rest)
  if redis.call('EXISTS', credit) == 1 then
    redis.call('HINCRBY', credit, 'available', rest)
    redis.call('HINCRBY', credit, 'held', 0 - rest)
  end
  if spend ~= '' and redis.call('EXISTS', spend) == 1 then
    redis.call('DECRBY', spend, rest)
  end
end
