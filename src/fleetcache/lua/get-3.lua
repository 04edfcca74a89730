--[[
  get-3: read one entry and count the hit or miss, atomically, in one round trip.

  KEYS[1]  entry key      {P:s}:e:<digest>  (string: envelope bytes)
  KEYS[2]  index key      {P:s}:i           (sorted set: member = digest, score = expiry ms)
  KEYS[3]  stats key      {P:s}:s           (hash: integer counters, savings records m:<model>)

  ARGV[1]  digest         the request digest (the index member)
  ARGV[2]  model          model name: a hit counts in its savings record m:<model>, a miss
                          in misses and mm:<model>
  ARGV[3]  magic          the envelope magic "FC" (versions 1 and 2 are accepted)

  Returns
    bulk string  the envelope bytes on a hit (the hit and what its header says it saved
                 counted in the model's packed record m:<model>: see count_saved)
    nil          on a miss (misses and mm:<model> counted). A miss also repairs the index:
                 a member whose entry is gone is removed and counted as expired (its expiry
                 time has passed, server clock, ms) or evicted (it vanished early). An entry
                 whose header is not a valid envelope is deleted and counted as corrupt.

  Counter writes use pcall: at maxmemory with noeviction the entry is still served and
  only the counting is skipped.
]]
--- @include "lookup"
--- @include "count_hit"
--- @include "count_miss"
local v = lookup(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[3])
if v then
  count_hit(KEYS[3], ARGV[2], v)
  return v
end
count_miss(KEYS[3], ARGV[2])
return false
