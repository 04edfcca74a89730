--[[
  get_many-2: read up to 998 entries of ONE shard and count each hit or miss, atomically, in
  one script call (the batch twin of get-3; same counting, same index repair).

  Fixed keys: 2. The call passes more keys after them (variadic): numkeys = 2 + n.
  KEYS[1]      index key      {P:s}:i           (sorted set: member = digest, score = expiry ms)
  KEYS[2]      stats key      {P:s}:s           (hash: integer counters, savings records m:<model>)
  KEYS[3..n+2] entry keys     {P:s}:e:<digest>  (one per request, in request order; n <= 998,
                              so a call never names more than 1000 keys; duplicates allowed)

  ARGV[1]      magic          the envelope magic "FC" (versions 1 and 2 are accepted)
  ARGV[2i]     digest         digest of request i (i = 1..n), the index member of KEYS[i+2]
  ARGV[2i+1]   model          model name of request i: its record m:<model> / mm:<model>

  Returns
    array of n items, in request order: the envelope bytes (bulk string) on a hit, false
    (nil bulk) on a miss. Each item is counted exactly as get-3 counts it: the hit and what
    its header says it saved in the record m:<model> (count_saved) on a hit; misses,
    mm:<model> on a miss; a miss removes an index member whose
    entry is gone (counted expired or evicted, server clock, ms); an entry whose header is
    not a valid envelope is deleted and counted corrupt (and is a miss).

  Counter writes use pcall, as in get-3. Bounded work: n <= 998 entries per call.
]]
--- @include "lookup"
--- @include "count_hit"
--- @include "count_miss"
local n = #KEYS - 2
if n > 998 then
  return redis.error_reply('get_many-2: at most 998 entry keys per call')
end
local out = {}
for i = 1, n do
  local model = ARGV[2 * i + 1]
  local v = lookup(KEYS[i + 2], KEYS[1], KEYS[2], ARGV[2 * i], ARGV[1])
  if v then
    count_hit(KEYS[2], model, v)
    out[i] = v
  else
    count_miss(KEYS[2], model)
    out[i] = false
  end
end
return out
