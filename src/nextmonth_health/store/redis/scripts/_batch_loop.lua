-- Runs a script once per call packed in ARGV (calls.BatchedCall): ARGV[1] calls, then per
-- call its number of keys, its number of arguments and the arguments; KEYS holds every call's
-- keys in turn. The script's body, before this, becomes a function whose parameters shadow
-- KEYS and ARGV.
local out, k, a = {}, 0, 2
for i = 1, tonumber(ARGV[1]) do
  local nkeys, nargs = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local keys, args = {}, {}
  for j = 1, nkeys do keys[j] = KEYS[k + j] end
  for j = 1, nargs do args[j] = ARGV[a + 1 + j] end
  local result = call(keys, args)
  if result == nil then result = false end
  out[i] = result
  k = k + nkeys
  a = a + 2 + nargs
end
return out
