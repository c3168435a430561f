-- Marks sites active, in the list RedisStore.sites answers from: one call per write (per
-- 1,000 sites), not one per site.
--
-- KEYS: sites
-- ARGV: ttl, members...
--   members: (score, member) pairs.
redis.call('ZADD', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
