--[[
  include store: write entries and keep the index exact.

  store_entry(entry_key, index_key, digest, payload, ttl_ms, now)
    SET the entry (PXAT now + ttl_ms; ttl_ms = 0: no expiry) and index it with that expiry
    as its score (+inf without one). -> 1 if the digest was not in the index, else 0.

  prune_expired(index_key, stats_key, now, limit)
    Remove at most min(limit, 1000) index members whose expiry (ms) is before now, and count
    them as expired. Their entries have already expired in Redis (same PXAT).

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

local function prune_expired(index_key, stats_key, now, limit)
  limit = math.min(limit, 1000)
  if limit > 0 then
    local old = redis.call('ZRANGEBYSCORE', index_key, '-inf', '(' .. now, 'LIMIT', 0, limit)
    if #old > 0 then
      redis.call('ZREM', index_key, unpack(old))
      redis.call('HINCRBY', stats_key, 'expired', #old)
    end
  end
end
