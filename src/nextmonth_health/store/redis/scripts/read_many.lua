-- Every bucket (or roll-up) of a site's signals starting in a range, as one string: a line
-- per bucket, "start TAB signal TAB key TAB total bad users bad_users slot count...", keys
-- with '%', TAB or newline percent-escaped (as they are stored). One string, not nested
-- replies: it costs Redis one concatenation and redis-py one bulk string.
--
-- KEYS: index
-- ARGV: prefix, low, high, index_kind, hash_kind, signals...
--   index: the site's index, for routing only; signals: the escaped signals wanted.
local prefix, low, high, index, kind = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local call, find, sub, concat = redis.call, string.find, string.sub, table.concat
local wanted = {}
for s = 6, #ARGV do wanted[ARGV[s]] = true end
local out, n = {}, 0
for _, start in ipairs(call('ZRANGEBYSCORE', prefix .. index, low, high)) do
  local fields = call('HGETALL', prefix .. kind .. ':' .. start)
  -- Per series: its counts, then its histogram's slots and counts.
  local series, names = {}, {}
  for i = 1, #fields, 2 do
    local field = fields[i]
    local tab = find(field, '\t', 1, true)
    if wanted[sub(field, 1, tab - 1)] then
      local slot = find(field, '\t', tab + 1, true)
      local name = field
      if slot then name = sub(field, 1, slot - 1) end
      local s = series[name]
      if not s then
        s = {false}
        series[name] = s
        names[#names + 1] = name
      end
      if slot then
        s[#s + 1] = sub(field, slot + 1)
        s[#s + 1] = fields[i + 1]
      else
        s[1] = fields[i + 1]
      end
    end
  end
  for _, name in ipairs(names) do
    local s = series[name]
    if s[1] then
      s[1] = start .. '\t' .. name .. '\t' .. s[1]
      out[n + 1] = concat(s, ' ')
      n = n + 1
    end
  end
end
if n == 0 then return '' end
return concat(out, '\n') .. '\n'
