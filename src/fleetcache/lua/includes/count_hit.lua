--[[
  include count_hit: count one hit served from the cache.

  count_hit(stats_key, model, tokens)
    HINCRBY hits, mh:<model> by 1 and tokens_saved by tokens (an integer >= 0, skipped
    when 0). Writes use pcall: at maxmemory with noeviction the counting is skipped.

  Uses no KEYS or ARGV of its own: callers pass them in.
]]
local function count_hit(stats_key, model, tokens)
  redis.pcall('HINCRBY', stats_key, 'hits', 1)
  redis.pcall('HINCRBY', stats_key, 'mh:' .. model, 1)
  if tokens > 0 then
    redis.pcall('HINCRBY', stats_key, 'tokens_saved', tokens)
  end
end
