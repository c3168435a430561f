-- Releases a lease its owner holds.
--
-- KEYS: lease
-- ARGV: owner
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, string.find(held, ' ', 1, true) + 1) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
