--[[
  include lookup (includes now_ms): read one entry for a get, repairing what a miss reveals.

  lookup(entry_key, index_key, stats_key, digest, magic)
    -> bytes, tokens  a valid envelope (its leading bytes are magic) and the token count in
                      its header (bytes 5..8, unsigned big-endian)
    -> false          a miss. An entry whose header is not a valid envelope is deleted and
                      counted corrupt; an index member whose entry is gone is removed and
                      counted expired (its expiry, ms, has passed) or evicted (it vanished).

  count_hit(stats_key, model, tokens): hits, mh:<model>, tokens_saved.
  count_miss(stats_key, model): misses, mm:<model>.

  Every counter write uses pcall: at maxmemory with noeviction the entry is still served and
  only the counting is skipped. Uses no KEYS or ARGV of its own: callers pass them in.
]]
--- @include "now_ms"
local function lookup(entry_key, index_key, stats_key, digest, magic)
  local v = redis.call('GET', entry_key)
  if v then
    if string.len(v) >= 8 and string.sub(v, 1, string.len(magic)) == magic then
      local b1, b2, b3, b4 = string.byte(v, 5, 8)
      return v, ((b1 * 256 + b2) * 256 + b3) * 256 + b4
    end
    redis.pcall('DEL', entry_key)
    redis.pcall('ZREM', index_key, digest)
    redis.pcall('HINCRBY', stats_key, 'corrupt', 1)
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

local function count_hit(stats_key, model, tokens)
  redis.pcall('HINCRBY', stats_key, 'hits', 1)
  redis.pcall('HINCRBY', stats_key, 'mh:' .. model, 1)
  if tokens > 0 then
    redis.pcall('HINCRBY', stats_key, 'tokens_saved', tokens)
  end
end

local function count_miss(stats_key, model)
  redis.pcall('HINCRBY', stats_key, 'misses', 1)
  redis.pcall('HINCRBY', stats_key, 'mm:' .. model, 1)
end
