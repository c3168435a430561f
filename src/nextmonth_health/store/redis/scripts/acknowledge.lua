-- Acknowledges an alert; the first acknowledgement wins.
--
-- KEYS: hashes...
-- ARGV: id, at, ttl
--   hashes: the alert's JSON, then a hash per part kept apart: created, ack, notified,
--   reminders (calls.AlertHashes).
-- Returns the alert's JSON and its parts, or nothing when there is no such alert.
local id = ARGV[1]
local doc = redis.call('HGET', KEYS[1], id)
if not doc then return false end
if redis.call('HSETNX', KEYS[3], id, ARGV[2]) == 1 then redis.call('EXPIRE', KEYS[3], ARGV[3]) end
local found = {doc}
for i = 2, #KEYS do found[i] = redis.call('HGET', KEYS[i], id) end
return found
