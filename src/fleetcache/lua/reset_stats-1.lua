--[[
  reset_stats-1: zero one shard's counters; the entries and the index stay.

  KEYS[1]  stats key      {P:s}:s

  Returns
    integer  1 if there were counters to delete, else 0.
]]
return redis.call('DEL', KEYS[1])
