-- An alert's JSON lives in the site's alerts hash; what must not go back when a pass
-- rewrites it lives beside it, a hash each (codec.ALERT_PARTS), and wins on read: the
-- first creation, the acknowledgement, when the push sinks were last told and how many
-- reminders they got. Times stay the strings Python sent: Lua only compares them.
--
-- KEYS: hashes...
-- ARGV: id, doc, created_at, acknowledged_at, notified_at, reminders, ttl
--   hashes: the alert's JSON, then a hash per part kept apart: created, ack, notified,
--   reminders (calls.AlertHashes).
--   acknowledged_at, notified_at: '' for none.
local id = ARGV[1]
redis.call('HSET', KEYS[1], id, ARGV[2])
local created = redis.call('HGET', KEYS[2], id)
if not created or tonumber(ARGV[3]) < tonumber(created) then redis.call('HSET', KEYS[2], id, ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], id, ARGV[4]) end
if ARGV[5] ~= '' then
  local notified = redis.call('HGET', KEYS[4], id)
  if not notified or tonumber(ARGV[5]) > tonumber(notified) then redis.call('HSET', KEYS[4], id, ARGV[5]) end
end
if tonumber(ARGV[6]) > tonumber(redis.call('HGET', KEYS[5], id) or '0') then redis.call('HSET', KEYS[5], id, ARGV[6]) end
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[7]) end
return 1
