--[[
  include prune_expired: remove a bounded number of expired index members.

  prune_expired(index_key, stats_key, now, limit)
    Remove at most min(limit, 1000) index members whose expiry (ms) is before now (ms,
    server clock), and count them as expired. Their entries have already expired in Redis
    (same PXAT).

  Uses no KEYS or ARGV of its own: callers pass them in.
]]
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
