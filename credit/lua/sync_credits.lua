-- Credits booked in the ledger (purchases, grants, refunds, adjustments) reach the balance:
-- the ledger's total and its sequence number replace Redis's if newer, and the available
-- balance moves by the difference. Idempotent and order-proof: an older or repeated sync
-- changes nothing.
-- KEYS: [1] organization credit. ARGV: [1] credits booked, [2] their sequence number.
-- Returns 1 applied, 0 not newer, -1 not loaded (the next call loads it from the ledger).
local state = redis.call('HMGET', KEYS[1], 'credits', 'credits_seq')
if not state[2] then return -1 end
if tonumber(ARGV[2]) <= tonumber(state[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], 'available', tonumber(ARGV[1]) - tonumber(state[1]))
redis.call('HSET', KEYS[1], 'credits', ARGV[1], 'credits_seq', ARGV[2])
return 1
