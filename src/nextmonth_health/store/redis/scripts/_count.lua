-- count(sets, hlls, scratch): distinct users of cells, given as two lists of keys (exact
-- sets, HyperLogLogs): the exact union while no set overflowed its limit, else a
-- HyperLogLog union in the scratch key of the overflowed cells' HyperLogLogs and the other
-- cells' users (those have no HyperLogLog).
local call, min = redis.call, math.min
local function count(sets, hlls, scratch)
  local n = #sets
  if n == 0 then return 0 end
  local overflowed = {}
  for i = 1, n do overflowed[i] = call('SISMEMBER', sets[i], '!') == 1 end
  local any = false
  for i = 1, n do any = any or overflowed[i] end
  if not any then
    if n == 1 then return call('SCARD', sets[1]) end
    local seen, c = {}, 0
    for i = 1, n do
      for _, m in ipairs(call('SMEMBERS', sets[i])) do
        if not seen[m] then
          seen[m] = true
          c = c + 1
        end
      end
    end
    return c
  end
  call('DEL', scratch)
  call('PFADD', scratch)
  call('PEXPIRE', scratch, 60000)
  local merge = {}
  for i = 1, n do
    if overflowed[i] then
      merge[#merge + 1] = hlls[i]
      if #merge == 1000 then
        call('PFMERGE', scratch, unpack(merge))
        merge = {}
      end
    else
      local members = call('SMEMBERS', sets[i])
      for m = 1, #members, 4000 do call('PFADD', scratch, unpack(members, m, min(m + 3999, #members))) end
    end
  end
  if #merge > 0 then call('PFMERGE', scratch, unpack(merge)) end
  local c = call('PFCOUNT', scratch)
  call('DEL', scratch)
  return c
end
