-- One atomic write of a site's deltas, cheap on both ends. Packing arguments is most of a
-- flush's cost in redis-py, so all of a call's buckets travel as one string. In Redis, each
-- redis.call costs more than the command it runs, so the layout keeps all of a site's
-- series of one bucket in one hash (t:<start>, and r300:<start>, r3600:<start> for the
-- roll-ups, which are summed here from the raw deltas, not sent), a field per series
-- (<signal> TAB <key>) holding its counts (details below). A flush then costs one HMGET
-- and one HSET per bucket start rather than per series, and a read one HGETALL per start.
-- Sums are Lua numbers, exact up to 2^53. Key names are built from the site's prefix: every
-- key of a site shares its hash tag, so they all live in the slot KEYS[1] routes to.
--
-- KEYS: index, mark_key
-- ARGV: prefix, raw_ttl, exact_limit, mark, #rollups, #signals, late_write_seconds, lines
--   mark_key, for a named batch only: where its writer's mark lives; mark: "<batch> <call>",
--   or empty. rollups: their number W, then W (width, ttl) pairs; signals: their number S,
--   then the S escaped signal names. lines, the buckets: a line each, "signal TAB key TAB
--   start total bad slot count slot count ... TAB users TAB bad users NEWLINE", the signal
--   as its number (from 1) in the list above, the key with '%', TAB and newline
--   percent-escaped, users as signed decimal 64-bit hashes, space-separated.
-- Returns the number of buckets written, or -1 when the mark shows this call applied.
local call, find, gsub, gmatch = redis.call, string.find, string.gsub, string.gmatch
local match, fmt, min, max, concat = string.match, string.format, math.min, math.max, table.concat
local prefix, raw_ttl, limit, mark = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
-- A batch's call applies once: KEYS[2] holds the last "batch call" its writer applied.
if mark ~= '' then
  local done = call('GET', KEYS[2])
  if done then
    local batch, part = match(done, '^(%d+) (%d+)$')
    local new_batch, new_part = match(mark, '^(%d+) (%d+)$')
    batch, part, new_batch, new_part = tonumber(batch), tonumber(part), tonumber(new_batch), tonumber(new_part)
    if batch > new_batch or (batch == new_batch and part >= new_part) then return -1 end
  end
  call('SET', KEYS[2], mark, 'EX', raw_ttl)
end
local nwidths = tonumber(ARGV[5])
-- Per width (raw first): hash kind, index, ttl, width in seconds (0: raw).
local kinds = {{'t', 'ti', raw_ttl, 0}}
for w = 1, nwidths do
  local width = ARGV[4 + 2 * w]
  kinds[w + 1] = {'r' .. width, 'ri' .. width, ARGV[5 + 2 * w], tonumber(width)}
end
local a = 6 + 2 * nwidths
local nsignals = tonumber(ARGV[a])
local escaped = {}
for s = 1, nsignals do escaped[s] = ARGV[a + s] end
-- The hashes this call changes, in order, with their series' deltas: total, bad, the
-- histogram by slot and, for raw buckets, the users and the bad users to add (lists of
-- space-separated hashes) and the tail of their keys' names.
local hashes, order = {}, {}
for k = 1, #kinds do hashes[k] = {} end
local function deltas(k, start, field)
  local hash = hashes[k][start]
  if not hash then
    hash = {kinds[k], start, {}, {}, prefix .. kinds[k][1] .. ':' .. start}
    hashes[k][start] = hash
    order[#order + 1] = hash
  end
  local d = hash[3][field]
  if not d then
    d = {0, 0, {}, false, false, false}
    hash[3][field] = d
    hash[4][#hash[4] + 1] = field
  end
  return d
end
local function unescape(hex) return string.char(tonumber(hex, 16)) end
local line = '(%d+)\t([^\t\n]*)\t(%-?%d+) (%-?%d+) (%-?%d+) ?([^\t\n]*)\t([^\t\n]*)\t([^\t\n]*)\n'
local count, ats = 0, {}
for s, key, start, total, bad, hist, users, bad_users in gmatch(ARGV[#ARGV], line) do
  count = count + 1
  local signal = escaped[tonumber(s)]
  local field = signal .. '\t' .. key
  total, bad = tonumber(total), tonumber(bad)
  local counts, h = {}, 0
  for slot, n in gmatch(hist, '(%S+) (%S+)') do
    counts[h + 1], counts[h + 2] = slot, tonumber(n)
    h = h + 2
  end
  local starts = ats[start]
  if not starts then
    starts = {start}
    local first = tonumber(start)
    for k = 2, #kinds do starts[k] = fmt('%d', first - first % kinds[k][4]) end
    ats[start] = starts
  end
  for k = 1, #kinds do
    local d = deltas(k, starts[k], field)
    d[1], d[2] = d[1] + total, d[2] + bad
    local slots = d[3]
    for i = 1, h, 2 do
      local slot = counts[i]
      slots[slot] = (slots[slot] or 0) + counts[i + 1]
    end
  end
  if users ~= '' or bad_users ~= '' then
    local d = hashes[1][start][3][field]
    if not d[6] then
      if find(key, '%', 1, true) then key = gsub(key, '%%(%x%x)', unescape) end
      d[6] = ':' .. signal .. ':' .. start .. ':' .. key
    end
    if users ~= '' then
      d[4] = d[4] or {}
      d[4][#d[4] + 1] = users
    end
    if bad_users ~= '' then
      d[5] = d[5] or {}
      d[5][#d[5] + 1] = bad_users
    end
  end
end
-- Adds users to a series' exact set or, once that held more than the limit, to its
-- HyperLogLog (then the set is just the '!' marker), given how many it counted before
-- (from its field: more than the limit once the set overflowed); returns how many it
-- counts now. Most series never overflow and never need a HyperLogLog: it is made, from
-- the set's members, when the set overflows. The keys get their TTL when made.
local function add_users(set, hll, lists, before)
  local users, n = {}, 0
  for _, list in ipairs(lists) do
    for user in gmatch(list, '%S+') do
      n = n + 1
      users[n] = user
    end
  end
  local count, overflowed = before, before > limit
  for i = 1, n, 4000 do
    local j = min(i + 3999, n)
    if overflowed then
      call('PFADD', hll, unpack(users, i, j))
    else
      count = count + call('SADD', set, unpack(users, i, j))
      if count > limit then
        local members = call('SMEMBERS', set)
        for m = 1, #members, 4000 do call('PFADD', hll, unpack(members, m, min(m + 3999, #members))) end
        call('DEL', set)
        call('SADD', set, '!')
        call('EXPIRE', set, raw_ttl)
        call('EXPIRE', hll, raw_ttl)
        overflowed = true
      end
    end
  end
  if overflowed then return max(call('PFCOUNT', hll), limit + 1) end
  if before == 0 then call('EXPIRE', set, raw_ttl) end
  return count
end
-- One HMGET and one HSET per hash (per 4000 fields). A series' field holds "total bad
-- users bad_users"; in a raw bucket its histogram's (slot, count) pairs follow, in a
-- roll-up each slot has a field of its own (the series' field, TAB, the slot), so that a
-- write touches only the slots it adds to, however many an hour has gathered.
-- A hash gets its TTL and its index entry when made (when none of its series was there:
-- each is made in the same call as its TTL).
local indexes = {}
for _, hash in ipairs(order) do
  local kind, start, fields, names, name = unpack(hash)
  local inline = kind[4] == 0
  local wanted = {}
  for _, field in ipairs(names) do
    wanted[#wanted + 1] = field
    if not inline then
      local d, added = fields[field], {}
      for slot, n in pairs(d[3]) do
        wanted[#wanted + 1] = field .. '\t' .. slot
        added[#added + 1] = n
      end
      d[3] = added
    end
  end
  local stored = {}
  for i = 1, #wanted, 4000 do
    local j = min(i + 3999, #wanted)
    local got = call('HMGET', name, unpack(wanted, i, j))
    for m = i, j do stored[m] = got[m - i + 1] end
  end
  local values, made, w = {}, true, 0
  for _, field in ipairs(names) do
    local d = fields[field]
    local total, bad, users, bad_users, slots = d[1], d[2], 0, 0, d[3]
    w = w + 1
    if stored[w] then
      made = false
      local t, b, u, bu, rest = match(stored[w], '^(%S+) (%S+) (%S+) (%S+) ?(.*)$')
      total, bad, users, bad_users = total + t, bad + b, tonumber(u), tonumber(bu)
      if inline then
        for slot, n in gmatch(rest, '(%S+) (%S+)') do slots[slot] = (slots[slot] or 0) + tonumber(n) end
      end
    end
    if d[4] then users = add_users(prefix .. 'bu' .. d[6], prefix .. 'bul' .. d[6], d[4], users) end
    if d[5] then bad_users = add_users(prefix .. 'bb' .. d[6], prefix .. 'bbl' .. d[6], d[5], bad_users) end
    local value = fmt('%d %d %d %d', total, bad, users, bad_users)
    if inline then
      local parts = {value}
      for slot, n in pairs(slots) do
        parts[#parts + 1] = slot
        parts[#parts + 1] = fmt('%d', n)
      end
      value = concat(parts, ' ')
    end
    values[#values + 1] = field
    values[#values + 1] = value
    if not inline then
      for _, n in ipairs(slots) do
        w = w + 1
        values[#values + 1] = wanted[w]
        values[#values + 1] = fmt('%d', n + (stored[w] or 0))
      end
    end
  end
  for i = 1, #values, 4000 do call('HSET', name, unpack(values, i, min(i + 3999, #values))) end
  if made then
    call('EXPIRE', name, kind[3])
    local list = indexes[kind]
    if not list then
      list = {}
      indexes[kind] = list
    end
    list[#list + 1] = start
    list[#list + 1] = start
  end
end
for kind, list in pairs(indexes) do
  local index = prefix .. kind[2]
  for i = 1, #list, 4000 do call('ZADD', index, unpack(list, i, min(i + 3999, #list))) end
  call('EXPIRE', index, kind[3])
end
-- The site's newest bucket, and a count of late writes (LATE_WRITE_SECONDS, the ARGV
-- before the lines): a call whose oldest bucket is older than the newest by more than that.
local oldest, newest
for start in pairs(ats) do
  local t = tonumber(start)
  oldest, newest = min(oldest or t, t), max(newest or t, t)
end
if oldest then
  local marks = prefix .. 'w'
  local seen = tonumber(call('HGET', marks, 'newest') or '')
  if seen and oldest < seen - tonumber(ARGV[#ARGV - 1]) then call('HINCRBY', marks, 'late', 1) end
  if not seen or newest > seen then call('HSET', marks, 'newest', fmt('%d', newest)) end
  call('EXPIRE', marks, raw_ttl)
end
return count
