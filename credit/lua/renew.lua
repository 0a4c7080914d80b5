-- A living process pushes back the deadlines of the holds it still has open.
-- KEYS: the holds, then the holds index last. ARGV: [1] the new deadline.
-- Returns how many were still open.
local index = KEYS[#KEYS]
local open = 0
for i = 1, #KEYS - 1 do
  open = open + redis.call('ZADD', index, 'XX', 'CH', ARGV[1], KEYS[i])
end
return open
