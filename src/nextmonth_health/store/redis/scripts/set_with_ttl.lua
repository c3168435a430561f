-- Sets a field of a hash or a member of a sorted set, and the key's TTL, in one step.
--
-- KEYS: target
-- ARGV: op, field, value, ttl
--   op: 'hset' or 'zadd'; field: the field or the score; value: the value or the member.
--   target: a hash (op hset) or a sorted set (op zadd).
if ARGV[1] == 'hset' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
else
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
