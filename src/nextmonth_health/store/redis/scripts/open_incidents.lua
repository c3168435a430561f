-- The open incidents of a site, as their JSON.
--
-- KEYS: incidents, open
-- ARGV:
local ids = redis.call('HVALS', KEYS[2])
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[1], unpack(ids))
