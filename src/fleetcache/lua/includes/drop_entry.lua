--[[
  include drop_entry: delete an entry that is not a valid envelope, and count it.

  drop_entry(entry_key, index_key, stats_key, digest)
    DEL the entry key (whatever its type), ZREM the digest from the index, count corrupt.
    Writes use pcall (OOM-tolerant).

  Uses no KEYS or ARGV of its own: callers pass them in.
]]
local function drop_entry(entry_key, index_key, stats_key, digest)
  redis.pcall('DEL', entry_key)
  redis.pcall('ZREM', index_key, digest)
  redis.pcall('HINCRBY', stats_key, 'corrupt', 1)
end
