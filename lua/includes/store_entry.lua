--[[
  include store_entry: write one entry and keep the index exact.

  store_entry(entry_key, index_key, digest, payload, ttl_ms, now)
    SET the entry (PXAT now + ttl_ms, both in ms; ttl_ms = 0: no expiry) and index it with
    that expiry as its score (+inf without one). SET replaces a key of any type.
    -> 1 if the digest was not in the index, else 0.

  Uses no KEYS or ARGV of its own: callers pass them in.
]]
local function store_entry(entry_key, index_key, digest, payload, ttl_ms, now)
  if ttl_ms > 0 then
    local exp = now + ttl_ms
    redis.call('SET', entry_key, payload, 'PXAT', exp)
    return redis.call('ZADD', index_key, exp, digest)
  end
  redis.call('SET', entry_key, payload)
  return redis.call('ZADD', index_key, 'inf', digest)
end
