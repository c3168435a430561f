-- Compare and set: replaces a window's or silence's entry only if it is still the one
-- expected.
--
-- KEYS: hash
-- ARGV: id, expected, doc
-- Returns the entry stored afterwards.
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return ARGV[3]
end
return stored
