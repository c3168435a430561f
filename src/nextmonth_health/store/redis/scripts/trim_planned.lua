-- Forgets the windows or silences that ended before the cutoff (seconds).
--
-- KEYS: hash
-- ARGV: cutoff
local fields, cutoff, gone = redis.call('HGETALL', KEYS[1]), tonumber(ARGV[1]), {}
for i = 1, #fields, 2 do
  local ok, doc = pcall(cjson.decode, fields[i + 1])
  if ok and type(doc['ends_at']) == 'number' and doc['ends_at'] < cutoff then gone[#gone + 1] = fields[i] end
end
for i = 1, #gone, 500 do redis.call('HDEL', KEYS[1], unpack(gone, i, math.min(i + 499, #gone))) end
return #gone
