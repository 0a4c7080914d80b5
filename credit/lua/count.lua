-- A request refused before its limits were checked (400, 404, 413) still counts as one.
-- KEYS: [1] key window, [2] organization window.
-- ARGV: [1] key rpm, [2] key tpm, [3] org rpm, [4] org tpm, [5] time ('' = Redis's).
-- Returns 1.
local now = clock(ARGV[5])
local now_s = math.floor(now)
local oldest = now_s - 60
for i = 1, 2 do
  if tonumber(ARGV[2 * i - 1]) > 0 then
    advance(KEYS[i], oldest)
    count_requests(KEYS[i], now_s, oldest, 1)
  end
end
return 1
