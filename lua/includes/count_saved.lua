--[[
  include count_saved: add (sign 1) or take back (sign -1) what a hit on an envelope saved.

  count_saved(stats_key, model, v, sign)
    v is envelope bytes whose header lookup() accepted (version 1: 8 bytes; version 2: 34
    bytes; numbers unsigned big-endian; a shorter value counts nothing). Every HINCRBY is
    skipped when its amount is 0:
      tokens_saved  += sign * total tokens (bytes 5..8, both versions)
      version 2, per model (fleet totals are the sums over models):
      mi:<model> input tokens (bytes 9..12)      mo:<model> output tokens (13..16)
      mr:<model> cache-read tokens (17..20)       mw:<model> cache-write tokens (21..24)
      md:<model> upstream duration, ms (25..28)   mc:<model> cost, nano-USD (29..34)
      mu:<model> += sign when the cost is unknown (version 1, or bytes 29..34 all 0xFF)
    Writes use pcall: at maxmemory with noeviction the counting is skipped.

  Uses no KEYS or ARGV of its own: callers pass them in.
]]
local function count_saved(stats_key, model, v, sign)
  local len = string.len(v)
  if len < 8 then
    return
  end
  local t1, t2, t3, t4 = string.byte(v, 5, 8)
  local total = ((t1 * 256 + t2) * 256 + t3) * 256 + t4
  if total > 0 then
    redis.pcall('HINCRBY', stats_key, 'tokens_saved', sign * total)
  end
  if string.byte(v, 3) ~= 2 or len < 34 then
    redis.pcall('HINCRBY', stats_key, 'mu:' .. model, sign)
    return
  end
  local b = {string.byte(v, 9, 34)}
  local fields = {'mi:', 'mo:', 'mr:', 'mw:', 'md:'}
  for f = 1, 5 do
    local i = 4 * f - 3
    local n = ((b[i] * 256 + b[i + 1]) * 256 + b[i + 2]) * 256 + b[i + 3]
    if n > 0 then
      redis.pcall('HINCRBY', stats_key, fields[f] .. model, sign * n)
    end
  end
  local hi = b[21] * 256 + b[22]
  local lo = ((b[23] * 256 + b[24]) * 256 + b[25]) * 256 + b[26]
  if hi == 65535 and lo == 4294967295 then
    redis.pcall('HINCRBY', stats_key, 'mu:' .. model, sign)
  elseif hi > 0 or lo > 0 then
    redis.pcall('HINCRBY', stats_key, 'mc:' .. model, string.format('%d', sign * (hi * 4294967296 + lo)))
  end
end
