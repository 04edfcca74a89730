--[[
  include lookup (includes now_ms, drop_entry): read one entry for a get, repairing what a
  miss reveals.

  lookup(entry_key, index_key, stats_key, digest, magic)
    -> bytes          a valid envelope: it starts with magic ("FC"), then version 1 (at
                      least 8 bytes long) or version 2 (at least 34 bytes long)
    -> false          a miss. An entry whose header is not a valid envelope, or a key of
                      another type (hash, list, set... written by another client: GET fails
                      with WRONGTYPE) is deleted and counted corrupt; an index member whose
                      entry is gone is removed and counted expired (its expiry, ms, has
                      passed) or evicted (it vanished).

  Every write uses pcall: at maxmemory with noeviction the entry is still served and only
  the counting is skipped. Uses no KEYS or ARGV of its own: callers pass them in.
]]
--- @include "now_ms"
--- @include "drop_entry"
local function lookup(entry_key, index_key, stats_key, digest, magic)
  local v = redis.pcall('GET', entry_key)
  if type(v) == 'string' then
    local version = string.byte(v, 3)
    if string.sub(v, 1, 2) == magic and (
      (version == 2 and string.len(v) >= 34) or (version == 1 and string.len(v) >= 8)
    ) then
      return v
    end
    drop_entry(entry_key, index_key, stats_key, digest)
    return false
  end
  if type(v) == 'table' then -- an error reply: WRONGTYPE, the key is not a string
    drop_entry(entry_key, index_key, stats_key, digest)
    return false
  end
  local score = redis.call('ZSCORE', index_key, digest)
  if score then
    redis.pcall('ZREM', index_key, digest)
    local s = tonumber(score)
    if s and s < now_ms() then
      redis.pcall('HINCRBY', stats_key, 'expired', 1)
    else
      redis.pcall('HINCRBY', stats_key, 'evicted', 1)
    end
  end
  return false
end
