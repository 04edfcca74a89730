--[[
  include count_hit (includes count_saved): count one hit served from the cache.

  count_hit(stats_key, model, v)
    HINCRBY hits and mh:<model> by 1, then count_saved(stats_key, model, v, 1): the tokens,
    cost and time the envelope v's header says the hit saved (tokens_saved, and per model
    mi/mo/mr/mw/md/mc/mu:<model>). Writes use pcall: at maxmemory with noeviction the
    counting is skipped.

  Uses no KEYS or ARGV of its own: callers pass them in.
]]
--- @include "count_saved"
local function count_hit(stats_key, model, v)
  redis.pcall('HINCRBY', stats_key, 'hits', 1)
  redis.pcall('HINCRBY', stats_key, 'mh:' .. model, 1)
  count_saved(stats_key, model, v, 1)
end
