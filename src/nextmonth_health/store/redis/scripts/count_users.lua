-- Distinct users of cells (see count).
--
-- KEYS: scratch, cells...
-- ARGV:
--   cells: (exact set, HyperLogLog) per cell.
local sets, hlls = {}, {}
for i = 2, #KEYS, 2 do
  sets[#sets + 1] = KEYS[i]
  hlls[#hlls + 1] = KEYS[i + 1]
end
return count(sets, hlls, KEYS[1])
