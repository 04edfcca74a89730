--[[
  size-1: the number of live entries of one shard, exact under TTL, O(log n).

  KEYS[1]  index key      {P:s}:i   (sorted set: score = expiry time, ms, server clock)

  Returns
    integer  members whose expiry is now or later (ZCOUNT index now +inf).
]]
--- @include "now_ms"
local now = now_ms()
return redis.call('ZCOUNT', KEYS[1], now, '+inf')
