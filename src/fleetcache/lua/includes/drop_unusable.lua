--[[
  include drop_unusable: settle an entry whose body the client read but could not use.

  drop_unusable(entry_key, index_key, stats_key, digest, payload, undecodable)
    undecodable false (the body decoded but the reader's model rejected it): the entry is
    kept for readers that can use it, counted rejected; returns 0.
    undecodable true: the entry is deleted (DEL, ZREM of digest) only if it still holds
    exactly `payload` (not replaced meanwhile; a key of another type is not the same
    bytes), and counted corrupt only by the call that deleted it; returns 1 if this call
    deleted it, else 0.
    Reads and writes use pcall: at maxmemory (noeviction) the bad entry is still dropped.

  Uses no KEYS or ARGV of its own: callers pass them in.
]]
local function drop_unusable(entry_key, index_key, stats_key, digest, payload, undecodable)
  if not undecodable then
    redis.pcall('HINCRBY', stats_key, 'rejected', 1)
    return 0
  end
  if redis.pcall('GET', entry_key) == payload then
    redis.pcall('DEL', entry_key)
    redis.pcall('ZREM', index_key, digest)
    redis.pcall('HINCRBY', stats_key, 'corrupt', 1)
    return 1
  end
  return 0
end
