--[[
  include put_entry: one put, as put-3 and put_release-4 both do it.

  put_entry(entry_key, index_key, stats_key, digest, payload, ttl_ms, prune, cap)
    At the server's time now (ms): store the entry with its TTL and index it (store_entry;
    ttl_ms integer >= 0, 0 = no expiry), count the put, remove at most `prune` expired index
    members (prune_expired), then keep the shard within `cap` live entries (enforce_cap;
    0 = no cap), never evicting this entry. -> 1 if the digest was not in the index (a new
    entry), else 0.

  Uses no KEYS or ARGV of its own: callers pass them in.
]]
--- @include "now_ms"
--- @include "store_entry"
--- @include "prune_expired"
--- @include "enforce_cap"
local function put_entry(entry_key, index_key, stats_key, digest, payload, ttl_ms, prune, cap)
  local now = now_ms()
  local added = store_entry(entry_key, index_key, digest, payload, ttl_ms, now, cap > 0)
  redis.call('HINCRBY', stats_key, 'puts', 1)
  prune_expired(index_key, stats_key, now, prune)
  enforce_cap(index_key, stats_key, now, cap, {[digest] = true})
  return added
end
