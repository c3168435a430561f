-- Forgets a site's buckets (with their users) and roll-ups older than the cutoffs, and its
-- incidents (with their alerts) resolved before one.
--
-- KEYS: index
-- ARGV: prefix, before, hourly_before, resolved_before, five_minute_before
--   before, hourly_before, five_minute_before: "(<seconds>" for raw buckets, hourly and
--   five-minute roll-ups; resolved_before: the incidents' cutoff in seconds.
-- Returns the ids of the incidents forgotten.
local prefix, before, hourly_before, resolved_before = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local fine_before = ARGV[5]
local call = redis.call
local doomed = {}
local function forget(key)
  doomed[#doomed + 1] = key
  if #doomed >= 1000 then
    call('DEL', unpack(doomed))
    doomed = {}
  end
end
for _, t in ipairs({{'ti', 't', before}, {'ri300', 'r300', fine_before}, {'ri3600', 'r3600', hourly_before}}) do
  local index = prefix .. t[1]
  local old = call('ZRANGEBYSCORE', index, '-inf', t[3])
  for _, start in ipairs(old) do
    local hash = prefix .. t[2] .. ':' .. start
    if t[2] == 't' then
      for _, series in ipairs(series_of(hash)) do
        local tail = ':' .. series[1] .. ':' .. start .. ':' .. series[2]
        for _, users in ipairs({'bu', 'bul', 'bb', 'bbl'}) do forget(prefix .. users .. tail) end
      end
    end
    forget(hash)
  end
  for i = 1, #old, 1000 do call('ZREM', index, unpack(old, i, math.min(i + 999, #old))) end
end
if #doomed > 0 then call('DEL', unpack(doomed)) end
local incidents = prefix .. 'incidents'
local fields = redis.call('HGETALL', incidents)
local gone = {}
for i = 1, #fields, 2 do
  local ok, doc = pcall(cjson.decode, fields[i + 1])
  if ok and type(doc['resolved_at']) == 'number' and doc['resolved_at'] < resolved_before then
    gone[#gone + 1] = fields[i]
  end
end
local hashes = {incidents, prefix .. 'alerts'}
for _, part in ipairs({'created', 'ack', 'notified', 'reminders'}) do hashes[#hashes + 1] = prefix .. 'alerts:' .. part end
for i = 1, #gone, 500 do
  local j = math.min(i + 499, #gone)
  for _, hash in ipairs(hashes) do
    redis.call('HDEL', hash, unpack(gone, i, j))
  end
end
return gone
