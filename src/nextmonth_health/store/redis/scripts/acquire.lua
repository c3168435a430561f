-- Takes or renews a lease. Its value: "<expires> <owner>".
--
-- KEYS: lease, token
-- ARGV: owner, ttl_ms, now, expires, token_ttl
-- Returns the fencing token (one more for each new holder; the token outlives the lease),
-- or 0 while another owner holds the lease.
local held = redis.call('GET', KEYS[1])
local renew = false
if held then
  local sep = string.find(held, ' ', 1, true)
  local expires, holder = tonumber(string.sub(held, 1, sep - 1)), string.sub(held, sep + 1)
  if holder ~= ARGV[1] and expires > tonumber(ARGV[3]) then return 0 end
  renew = holder == ARGV[1]
end
local token = redis.call('GET', KEYS[2])
if not renew or not token then token = redis.call('INCR', KEYS[2]) end
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('SET', KEYS[1], ARGV[4] .. ' ' .. ARGV[1], 'PX', ARGV[2])
return tonumber(token)
