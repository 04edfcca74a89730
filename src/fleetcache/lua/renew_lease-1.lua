--[[
  renew_lease-1: extend a single-flight lease while its holder is still computing, so a
  holder slower than lease_ms keeps it (one compute per burst). Compare-and-extend: only
  the holder's token is renewed.

  KEYS[1]  lease key      {P:s}:l:<digest>  (string: the holder's token)

  ARGV[1]  token          the holder's lease token
  ARGV[2]  lease_ms       new time to live of the lease in milliseconds (integer >= 1)

  Returns
    integer  1 if the lease still held ARGV[1] and was extended, else 0 (it was lost).
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
