-- An organization's credit as the ledger has it, unless Redis has it already.
-- KEYS: [1] organization credit. ARGV: [1] credits booked, [2] their sequence number,
-- [3] usage booked. Returns 1 if loaded, 0 if it was there.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'available', tonumber(ARGV[1]) - tonumber(ARGV[3]),
           'held', 0, 'unbooked', 0, 'credits', ARGV[1], 'credits_seq', ARGV[2])
return 1
