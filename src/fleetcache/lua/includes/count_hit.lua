--[[
  include count_hit (includes count_saved): count one hit served from the cache.

  count_hit(stats_key, model, v)
    count_saved(stats_key, model, v, 1, 1): the hit and what the envelope v's header says it
    saved, added to the model's packed record m:<model> (one HGET, one HSET). Writes use
    pcall: at maxmemory with noeviction the counting is skipped.

  Uses no KEYS or ARGV of its own: callers pass them in.
]]
--- @include "count_saved"
local function count_hit(stats_key, model, v)
  count_saved(stats_key, model, v, 1, 1)
end
