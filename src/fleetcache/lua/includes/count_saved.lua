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
  -- 26 bytes as locals (no table: this runs on every hit)
  local i1, i2, i3, i4, o1, o2, o3, o4, r1, r2, r3, r4, w1, w2, w3, w4,
    d1, d2, d3, d4, c1, c2, c3, c4, c5, c6 = string.byte(v, 9, 34)
  local n = ((i1 * 256 + i2) * 256 + i3) * 256 + i4
  if n > 0 then
    redis.pcall('HINCRBY', stats_key, 'mi:' .. model, sign * n)
  end
  n = ((o1 * 256 + o2) * 256 + o3) * 256 + o4
  if n > 0 then
    redis.pcall('HINCRBY', stats_key, 'mo:' .. model, sign * n)
  end
  n = ((r1 * 256 + r2) * 256 + r3) * 256 + r4
  if n > 0 then
    redis.pcall('HINCRBY', stats_key, 'mr:' .. model, sign * n)
  end
  n = ((w1 * 256 + w2) * 256 + w3) * 256 + w4
  if n > 0 then
    redis.pcall('HINCRBY', stats_key, 'mw:' .. model, sign * n)
  end
  n = ((d1 * 256 + d2) * 256 + d3) * 256 + d4
  if n > 0 then
    redis.pcall('HINCRBY', stats_key, 'md:' .. model, sign * n)
  end
  local hi = c1 * 256 + c2
  local lo = ((c3 * 256 + c4) * 256 + c5) * 256 + c6
  if hi == 65535 and lo == 4294967295 then
    redis.pcall('HINCRBY', stats_key, 'mu:' .. model, sign)
  elseif hi > 0 or lo > 0 then
    redis.pcall('HINCRBY', stats_key, 'mc:' .. model, string.format('%d', sign * (hi * 4294967296 + lo)))
  end
end
