--[[
  get-3: read one entry and count the hit or miss, atomically, in one round trip.

  KEYS[1]  entry key      {P:s}:e:<digest>  (string: envelope bytes)
  KEYS[2]  index key      {P:s}:i           (sorted set: member = digest, score = expiry ms)
  KEYS[3]  stats key      {P:s}:s           (hash of integer counters)

  ARGV[1]  digest         the request digest (the index member)
  ARGV[2]  model          model name, for the per-model counters mh:<model> / mm:<model>
  ARGV[3]  magic          the envelope's accepted leading bytes (magic + version), e.g. "FC\1"

  Returns
    bulk string  the envelope bytes on a hit (hits, mh:<model> and tokens_saved counted)
    nil          on a miss (misses and mm:<model> counted). A miss also repairs the index:
                 a member whose entry is gone is removed and counted as expired (its expiry
                 time has passed, server clock, ms) or evicted (it vanished early). An entry
                 whose header is not a valid envelope is deleted and counted as corrupt.

  Counter writes use pcall: at maxmemory with noeviction the entry is still served and
  only the counting is skipped.
]]
local v = redis.call('GET', KEYS[1])
if v then
  if string.len(v) >= 8 and string.sub(v, 1, string.len(ARGV[3])) == ARGV[3] then
    local b1, b2, b3, b4 = string.byte(v, 5, 8)
    local tokens = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
    redis.pcall('HINCRBY', KEYS[3], 'hits', 1)
    redis.pcall('HINCRBY', KEYS[3], 'mh:' .. ARGV[2], 1)
    if tokens > 0 then
      redis.pcall('HINCRBY', KEYS[3], 'tokens_saved', tokens)
    end
    return v
  end
  redis.pcall('DEL', KEYS[1])
  redis.pcall('ZREM', KEYS[2], ARGV[1])
  redis.pcall('HINCRBY', KEYS[3], 'corrupt', 1)
else
  local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if score then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.pcall('ZREM', KEYS[2], ARGV[1])
    local s = tonumber(score)
    if s and s < now then
      redis.pcall('HINCRBY', KEYS[3], 'expired', 1)
    else
      redis.pcall('HINCRBY', KEYS[3], 'evicted', 1)
    end
  end
end
redis.pcall('HINCRBY', KEYS[3], 'misses', 1)
redis.pcall('HINCRBY', KEYS[3], 'mm:' .. ARGV[2], 1)
return false
