--[[
  invalidate-3: delete one entry and its index member.

  KEYS[1]  entry key      {P:s}:e:<digest>
  KEYS[2]  index key      {P:s}:i
  KEYS[3]  stats key      {P:s}:s

  ARGV[1]  digest         the request digest (the index member)

  Returns
    integer  1 if a live entry was deleted (invalidations counted), 0 if there was none.
]]
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if n > 0 then
  redis.call('HINCRBY', KEYS[3], 'invalidations', 1)
end
return n
