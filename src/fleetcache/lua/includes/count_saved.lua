--[[
  include count_saved: add (sign 1) or take back (sign -1) a hit and what it saved, in the
  model's packed savings record.

  count_saved(stats_key, model, v, sign, hits)
    v is envelope bytes whose header lookup() accepted (version 1: 8 bytes; version 2: 34
    bytes; numbers unsigned big-endian; a version 2 shorter than 34 bytes counts as version
    1; a value shorter than 8 bytes counts only the hits). hits is the number of hits this adds to the record
    (sign, or 0 for a coalesced answer, which is not a hit).

    The record is the stats hash field m:<model>: 80 bytes, ten signed 64-bit big-endian
    integers (struct format '>i8' x 10), every one kept below 2^53 in magnitude:
       1 hits           hits of this model
       2 tokens         total tokens (bytes 5..8, both versions)
       3 input          input tokens (version 2: bytes 9..12)
       4 output         output tokens (13..16)
       5 cache_read     cache-read input tokens (17..20)
       6 cache_write    cache-write input tokens (21..24)
       7 ms             upstream duration, ms (25..28)
       8 cost_usd       whole US dollars of the cost (bytes 29..34, nano-USD)
       9 cost_nano      the rest, nano-USD, 0 <= cost_nano < 10^9 (cost = 8 * 10^9 + 9)
      10 unpriced       hits whose cost is unknown (version 1, or bytes 29..34 all 0xFF)
    One HGET and one HSET a call, whatever the entry saved: the fleet totals (hits,
    tokens_saved, the savings) are the sums over the records, done by the reader.

    A record that is not 80 bytes or holds an out-of-range number (written by another
    client) is left as it is (the reader reports it) and the amounts go to the per-field
    integer counters instead (count_saved_fields: hits, mh:<model>, tokens_saved and
    mi/mo/mr/mw/md/mc/mu:<model>), so nothing is lost. A stats key of another type counts nothing.
    Reads and writes use pcall: at maxmemory with noeviction the counting is skipped.

  Uses no KEYS or ARGV of its own: callers pass them in.
]]
--- @include "count_saved_fields"
local REC_FMT = '>i8i8i8i8i8i8i8i8i8i8'
local REC_MAX = 9007199254740992  -- 2^53: the doubles of Lua are exact below it
local NANO = 1000000000

local function count_saved(stats_key, model, v, sign, hits)
  local rec = redis.pcall('HGET', stats_key, 'm:' .. model)
  local h, t, i, o, r, w, d, cu, cn, u = 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
  if type(rec) == 'string' then
    if string.len(rec) ~= 80 then
      return count_saved_fields(stats_key, model, v, sign, hits)
    end
    h, t, i, o, r, w, d, cu, cn, u = struct.unpack(REC_FMT, rec)
    -- comparisons only (no function call: this runs on every hit)
    if cn < 0 or cn >= NANO or h >= REC_MAX or h <= -REC_MAX or t >= REC_MAX
      or t <= -REC_MAX or i >= REC_MAX or i <= -REC_MAX or o >= REC_MAX or o <= -REC_MAX
      or r >= REC_MAX or r <= -REC_MAX or w >= REC_MAX or w <= -REC_MAX or d >= REC_MAX
      or d <= -REC_MAX or cu >= REC_MAX or cu <= -REC_MAX or u >= REC_MAX or u <= -REC_MAX then
      return count_saved_fields(stats_key, model, v, sign, hits)
    end
  elseif rec then -- an error reply: the stats key is not a hash
    return
  end
  h = h + hits
  local len = string.len(v)
  if len < 8 then
    return redis.pcall('HSET', stats_key, 'm:' .. model, struct.pack(REC_FMT, h, t, i, o, r, w, d, cu, cn, u))
  end
  -- 30 header bytes as locals (no table: this runs on every hit)
  local t1, t2, t3, t4, i1, i2, i3, i4, o1, o2, o3, o4, r1, r2, r3, r4, w1, w2, w3, w4,
    d1, d2, d3, d4, c1, c2, c3, c4, c5, c6 = string.byte(v, 5, 34)
  t = t + sign * (((t1 * 256 + t2) * 256 + t3) * 256 + t4)
  if string.byte(v, 3) ~= 2 or len < 34 then
    u = u + sign
  else
    i = i + sign * (((i1 * 256 + i2) * 256 + i3) * 256 + i4)
    o = o + sign * (((o1 * 256 + o2) * 256 + o3) * 256 + o4)
    r = r + sign * (((r1 * 256 + r2) * 256 + r3) * 256 + r4)
    w = w + sign * (((w1 * 256 + w2) * 256 + w3) * 256 + w4)
    d = d + sign * (((d1 * 256 + d2) * 256 + d3) * 256 + d4)
    local hi, lo = c1 * 256 + c2, ((c3 * 256 + c4) * 256 + c5) * 256 + c6
    if hi == 65535 and lo == 4294967295 then
      u = u + sign
    else
      local c = hi * 4294967296 + lo  -- < 2^48: exact
      local dollars = math.floor(c / NANO)
      cu = cu + sign * dollars
      cn = cn + sign * (c - dollars * NANO)
      local carry = math.floor(cn / NANO)  -- cn back into 0 .. 10^9 - 1
      cu = cu + carry
      cn = cn - carry * NANO
    end
  end
  redis.pcall('HSET', stats_key, 'm:' .. model, struct.pack(REC_FMT, h, t, i, o, r, w, d, cu, cn, u))
end
