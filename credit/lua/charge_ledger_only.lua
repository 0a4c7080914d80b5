-- Reconciliation found usage in the ledger that the balance never paid for (booked while
-- Redis was unreachable): take it from the available balance, unless the balance moved
-- since it was read (compare-and-set on available + held + unbooked, which only the drain's
-- acknowledgements and credit syncs change).
-- KEYS: [1] organization credit. ARGV: [1] the total read, [2] the amount to take.
-- Returns 1 taken, 0 moved meanwhile, -1 not loaded.
local s = redis.call('HMGET', KEYS[1], 'available', 'held', 'unbooked')
if not s[1] then return -1 end
if tonumber(s[1]) + tonumber(s[2]) + tonumber(s[3]) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HINCRBY', KEYS[1], 'available', 0 - tonumber(ARGV[2]))
return 1
