--[[
  include store: write entries and keep the index exact.

  store_entry(entry_key, index_key, digest, payload, ttl_ms, now, capped)
    SET the entry (PXAT now + ttl_ms; ttl_ms = 0: no expiry) and index it with that expiry
    as its score (+inf without one). -> 1 if the digest was not in the index, else 0.
    capped (optional, boolean): a namespace with max_entries; an entry without expiry is then
    scored NO_TTL_BASE + now (2^52 ms + the write time: still "live" forever for ZCOUNT now
    +inf, ordered after every real expiry and, among themselves, oldest write first), so the
    cap can evict "soonest to expire first, then oldest" in index order.

  enforce_cap(index_key, stats_key, now, cap, fresh)
    cap = 0: nothing. Else, while the shard has more than cap live members (ZCOUNT now +inf),
    remove the surplus in index order (soonest expiry first; entries without expiry after,
    oldest write first), skipping the digests in the set fresh (written by this call) unless
    the call itself wrote more than cap; delete their entries (derived from the index key's
    name: same hash tag, same slot) and count them as evicted. At most 1000 removals a call
    (a put adds at most 998 entries, so the surplus of a call never exceeds that).
    -> removed count.

  prune_expired(index_key, stats_key, now, limit)
    Remove at most min(limit, 1000) index members whose expiry (ms) is before now, and count
    them as expired. Their entries have already expired in Redis (same PXAT).

  Uses no KEYS or ARGV of its own: callers pass them in.
]]
local NO_TTL_BASE = 4503599627370496  -- 2^52 ms: base + now (ms) stays an exact double

local function store_entry(entry_key, index_key, digest, payload, ttl_ms, now, capped)
  if ttl_ms > 0 then
    local exp = now + ttl_ms
    redis.call('SET', entry_key, payload, 'PXAT', exp)
    return redis.call('ZADD', index_key, exp, digest)
  end
  redis.call('SET', entry_key, payload)
  if capped then
    return redis.call('ZADD', index_key, NO_TTL_BASE + now, digest)
  end
  return redis.call('ZADD', index_key, 'inf', digest)
end

local function enforce_cap(index_key, stats_key, now, cap, fresh)
  if cap <= 0 then
    return 0
  end
  local excess = redis.call('ZCOUNT', index_key, now, '+inf') - cap
  if excess <= 0 then
    return 0
  end
  excess = math.min(excess, 1000)
  local nfresh = 0
  for _ in pairs(fresh) do
    nfresh = nfresh + 1
  end
  local rows = redis.call('ZRANGEBYSCORE', index_key, now, '+inf', 'LIMIT', 0, excess + nfresh)
  local victims = {}
  for _, m in ipairs(rows) do  -- older entries first
    if #victims < excess and not fresh[m] then
      victims[#victims + 1] = m
    end
  end
  for _, m in ipairs(rows) do  -- the call alone wrote more than the cap
    if #victims < excess and fresh[m] then
      victims[#victims + 1] = m
    end
  end
  if #victims == 0 then
    return 0
  end
  local base = string.sub(index_key, 1, -2) .. 'e:'
  local keys = {}
  for i, m in ipairs(victims) do
    keys[i] = base .. m
  end
  redis.call('DEL', unpack(keys))
  redis.call('ZREM', index_key, unpack(victims))
  redis.call('HINCRBY', stats_key, 'evicted', #victims)
  return #victims
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
