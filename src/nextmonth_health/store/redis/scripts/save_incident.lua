-- Stores an incident unless its (check, key) has another open one; never reopens one.
--
-- KEYS: incidents, open, token
-- ARGV: id, doc, field, is_open, ttl, fence
--   field: "<check> NUL <key>", the open index's field; is_open: '1' when open; fence: the
--   fencing token the writer holds, or '' (unfenced).
-- Returns the JSON of the incident stored under the same (check, key) afterwards, or
-- 'stale' (not JSON; nothing written) when the token is not the lease's.
local id, doc, field, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
if ARGV[6] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[6] then return 'stale' end
local stored = redis.call('HGET', KEYS[1], id)
if ARGV[4] == '1' then
  if stored and cjson.decode(stored)['status'] ~= 'open' then return stored end
  local holder = redis.call('HGET', KEYS[2], field)
  if holder and holder ~= id then
    local other = redis.call('HGET', KEYS[1], holder)
    if other and cjson.decode(other)['status'] == 'open' then return other end
  end
  redis.call('HSET', KEYS[2], field, id)
elseif redis.call('HGET', KEYS[2], field) == id then
  redis.call('HDEL', KEYS[2], field)
end
redis.call('HSET', KEYS[1], id, doc)
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return doc
