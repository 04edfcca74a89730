--[[
  include count_miss: count one miss.

  count_miss(stats_key, model)
    HINCRBY misses and mm:<model> by 1. Writes use pcall: at maxmemory with noeviction the
    counting is skipped.

  Uses no KEYS or ARGV of its own: callers pass them in.
]]
local function count_miss(stats_key, model)
  redis.pcall('HINCRBY', stats_key, 'misses', 1)
  redis.pcall('HINCRBY', stats_key, 'mm:' .. model, 1)
end
