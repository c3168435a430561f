-- The users behind a site's buckets starting in a range, over parts (signal, bad only,
-- keys): the buckets' series found with the index and their hashes' fields, the users
-- counted in place.
--
-- KEYS: scratch
-- ARGV: prefix, low, high, #parts
--   parts: their number, then per part: signal, '1' for bad users only, the number of keys
--   (all: -1), the keys.
local prefix, low, high = ARGV[1], ARGV[2], ARGV[3]
-- Each bucket in the range: its start and its series.
local buckets = {}
for _, start in ipairs(call('ZRANGEBYSCORE', prefix .. 'ti', low, high)) do
  buckets[#buckets + 1] = {start, series_of(prefix .. 't:' .. start)}
end
local sets, hlls, a = {}, {}, 5
for _ = 1, tonumber(ARGV[4]) do
  local signal, bad, nkeys = ARGV[a], ARGV[a + 1] == '1', tonumber(ARGV[a + 2])
  local wanted = nil
  if nkeys >= 0 then
    wanted = {}
    for k = a + 3, a + 2 + nkeys do wanted[ARGV[k]] = true end
  end
  a = a + 3 + math.max(nkeys, 0)
  local set, hll = 'bu', 'bul'
  if bad then set, hll = 'bb', 'bbl' end
  for _, bucket in ipairs(buckets) do
    for _, series in ipairs(bucket[2]) do
      if series[1] == signal and (wanted == nil or wanted[series[2]]) then
        local tail = ':' .. signal .. ':' .. bucket[1] .. ':' .. series[2]
        sets[#sets + 1] = prefix .. set .. tail
        hlls[#hlls + 1] = prefix .. hll .. tail
      end
    end
  end
end
return count(sets, hlls, KEYS[1])
