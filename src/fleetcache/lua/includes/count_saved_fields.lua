--[[
  include count_saved_fields: count_saved's fallback when a model's savings record is
  unusable: the same amounts as separate integer counters.

  count_saved_fields(stats_key, model, v, sign, hits)
    v is envelope bytes (version 1: 8 bytes; version 2: 34 bytes; numbers unsigned
    big-endian; a version 2 shorter than 34 bytes counts as version 1; shorter than 8 bytes:
    only the hits). HINCRBY, each skipped when its amount is 0:
      hits and mh:<model>   += hits (sign, or 0 for a coalesced answer)
      tokens_saved          += sign * total tokens (bytes 5..8)
      version 2: mi:<model> input tokens (bytes 9..12), mo:<model> output (13..16),
      mr:<model> cache-read (17..20), mw:<model> cache-write (21..24), md:<model> upstream
      ms (25..28), mc:<model> cost, nano-USD (29..34)
      mu:<model> += sign when the cost is unknown (version 1, or bytes 29..34 all 0xFF)
    Writes use pcall: at maxmemory with noeviction the counting is skipped.

  Uses no KEYS or ARGV of its own: callers pass them in.
]]
local function count_saved_fields(stats_key, model, v, sign, hits)
  if hits ~= 0 then
    redis.pcall('HINCRBY', stats_key, 'hits', hits)
    redis.pcall('HINCRBY', stats_key, 'mh:' .. model, hits)
  end
  if string.len(v) < 8 then
    return
  end
  local t1, t2, t3, t4 = string.byte(v, 5, 8)
  local total = ((t1 * 256 + t2) * 256 + t3) * 256 + t4
  if total > 0 then
    redis.pcall('HINCRBY', stats_key, 'tokens_saved', sign * total)
  end
  if string.byte(v, 3) ~= 2 or string.len(v) < 34 then
    redis.pcall('HINCRBY', stats_key, 'mu:' .. model, sign)
    return
  end
  local i1, i2, i3, i4, o1, o2, o3, o4, r1, r2, r3, r4 = string.byte(v, 9, 20)
  local w1, w2, w3, w4, d1, d2, d3, d4 = string.byte(v, 21, 28)
  local n_i = ((i1 * 256 + i2) * 256 + i3) * 256 + i4
  if n_i > 0 then
    redis.pcall('HINCRBY', stats_key, 'mi:' .. model, sign * n_i)
  end
  local n_o = ((o1 * 256 + o2) * 256 + o3) * 256 + o4
  if n_o > 0 then
    redis.pcall('HINCRBY', stats_key, 'mo:' .. model, sign * n_o)
  end
  local n_r = ((r1 * 256 + r2) * 256 + r3) * 256 + r4
  if n_r > 0 then
    redis.pcall('HINCRBY', stats_key, 'mr:' .. model, sign * n_r)
  end
  local n_w = ((w1 * 256 + w2) * 256 + w3) * 256 + w4
  if n_w > 0 then
    redis.pcall('HINCRBY', stats_key, 'mw:' .. model, sign * n_w)
  end
  local n_d = ((d1 * 256 + d2) * 256 + d3) * 256 + d4
  if n_d > 0 then
    redis.pcall('HINCRBY', stats_key, 'md:' .. model, sign * n_d)
  end
  local c1, c2, c3, c4, c5, c6 = string.byte(v, 29, 34)
  local hi, lo = c1 * 256 + c2, ((c3 * 256 + c4) * 256 + c5) * 256 + c6
  if hi == 65535 and lo == 4294967295 then
    redis.pcall('HINCRBY', stats_key, 'mu:' .. model, sign)
  elseif hi > 0 or lo > 0 then
    redis.pcall('HINCRBY', stats_key, 'mc:' .. model, string.format('%d', sign * (hi * 4294967296 + lo)))
  end
end
