-- series_of(hash): a raw bucket's series, as (signal, key) pairs: its hash's fields, keys
-- unescaped as the names of their users' keys have them (a raw bucket keeps its histogram
-- inline, so every field is a series).
local function series_of(hash)
  local find, sub = string.find, string.sub
  local found = {}
  for _, field in ipairs(redis.call('HKEYS', hash)) do
    local tab = find(field, '\t', 1, true)
    local key = sub(field, tab + 1)
    if find(key, '%', 1, true) then
      key = string.gsub(key, '%%(%x%x)', function(hex) return string.char(tonumber(hex, 16)) end)
    end
    found[#found + 1] = {sub(field, 1, tab - 1), key}
  end
  return found
end
