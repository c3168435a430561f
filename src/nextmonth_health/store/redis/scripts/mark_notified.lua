-- Compare and set of when an alert's push sinks were last told.
--
-- KEYS: hashes...
-- ARGV: id, expected, at, reminder, ttl
--   hashes: the alert's JSON, then a hash per part kept apart: created, ack, notified,
--   reminders (calls.AlertHashes).
--   expected: the notified_at expected ('' for none); reminder: '1' to count a reminder.
-- Returns the alert as stored afterwards when this call set it, else nothing.
local id = ARGV[1]
local doc = redis.call('HGET', KEYS[1], id)
if not doc then return false end
local notified = redis.call('HGET', KEYS[4], id)
if ARGV[2] == '' then
  if notified then return false end
elseif not notified or tonumber(notified) ~= tonumber(ARGV[2]) then
  return false
end
redis.call('HSET', KEYS[4], id, ARGV[3])
if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[5], id, 1) end
for i = 4, 5 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
local found = {doc}
for i = 2, #KEYS do found[i] = redis.call('HGET', KEYS[i], id) end
return found
