--[[
  include store_entry: write one entry and keep the index exact.

  store_entry(entry_key, index_key, digest, payload, ttl_ms, now, capped)
    SET the entry (PXAT now + ttl_ms, both in ms; ttl_ms = 0: no expiry) and index it with
    that expiry as its score (+inf without one). SET replaces a key of any type.
    capped (optional, boolean): a namespace with max_entries; an entry without expiry is then
    scored NO_TTL_BASE + now (2^52 ms + the write time: still "live" forever for ZCOUNT now
    +inf, ordered after every real expiry and, among themselves, oldest write first), so the
    cap can evict "soonest to expire first, then oldest" in index order (enforce_cap).
    -> 1 if the digest was not in the index, else 0.

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
