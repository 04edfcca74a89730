--[[
  stats-2: one shard's live entry count and all of its counters, in one consistent read.

  KEYS[1]  index key      {P:s}:i
  KEYS[2]  stats key      {P:s}:s

  Returns
    array {size, fields}
      size     live entries (ZCOUNT index now +inf; now = server clock, ms)
      fields   the stats hash as a flat array {name1, value1, name2, value2, ...}
]]
--- @include "now_ms"
local now = now_ms()
return {redis.call('ZCOUNT', KEYS[1], now, '+inf'), redis.call('HGETALL', KEYS[2])}
