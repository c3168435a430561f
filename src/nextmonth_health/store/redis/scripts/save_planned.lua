-- Maintenance windows and silences: one hash per kind, id -> JSON. The TTL is never
-- shortened: it covers the latest-ending entry, however long ago it was saved.
--
-- KEYS: hash
-- ARGV: id, doc, ttl
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 1
