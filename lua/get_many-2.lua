--[[
  get_many-2: read up to 998 entries of ONE shard and count each hit or miss, atomically, in
  one script call (the batch twin of get-3; same counting, same index repair).

  Fixed keys: 2. The call passes more keys after them (variadic): numkeys = 2 + n.
  KEYS[1]      index key      {P:s}:i           (sorted set: member = digest, score = expiry ms)
  KEYS[2]      stats key      {P:s}:s           (hash of integer counters)
  KEYS[3..n+2] entry keys     {P:s}:e:<digest>  (one per request, in request order; n <= 998,
                              so a call never names more than 1000 keys; duplicates allowed)

  ARGV[1]      magic          the envelope's accepted leading bytes (magic + version), "FC\1"
  ARGV[2i]     digest         digest of request i (i = 1..n), the index member of KEYS[i+2]
  ARGV[2i+1]   model          model name of request i, for the counters mh:<model> / mm:<model>

  Returns
    array of n items, in request order: the envelope bytes (bulk string) on a hit, false
    (nil bulk) on a miss. Each item is counted exactly as get-3 counts it: hits, mh:<model>,
    tokens_saved on a hit; misses, mm:<model> on a miss; a miss removes an index member whose
    entry is gone (counted expired or evicted, server clock, ms); an entry whose header is
    not a valid envelope is deleted and counted corrupt (and is a miss).

  Counter writes use pcall, as in get-3. Bounded work: n <= 998 entries per call.
]]
local n = #KEYS - 2
if n > 998 then
  return redis.error_reply('get_many-2: at most 998 entry keys per call')
end
local magic = ARGV[1]
local mlen = string.len(magic)
local out = {}
local now = nil
for i = 1, n do
  local ek = KEYS[i + 2]
  local digest = ARGV[2 * i]
  local model = ARGV[2 * i + 1]
  local v = redis.call('GET', ek)
  local hit = false
  if v then
    if string.len(v) >= 8 and string.sub(v, 1, mlen) == magic then
      local b1, b2, b3, b4 = string.byte(v, 5, 8)
      local tokens = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
      redis.pcall('HINCRBY', KEYS[2], 'hits', 1)
      redis.pcall('HINCRBY', KEYS[2], 'mh:' .. model, 1)
      if tokens > 0 then
        redis.pcall('HINCRBY', KEYS[2], 'tokens_saved', tokens)
      end
      hit = true
    else
      redis.pcall('DEL', ek)
      redis.pcall('ZREM', KEYS[1], digest)
      redis.pcall('HINCRBY', KEYS[2], 'corrupt', 1)
    end
  else
    local score = redis.call('ZSCORE', KEYS[1], digest)
    if score then
      if not now then
        local t = redis.call('TIME')
        now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      end
      redis.pcall('ZREM', KEYS[1], digest)
      local s = tonumber(score)
      if s and s < now then
        redis.pcall('HINCRBY', KEYS[2], 'expired', 1)
      else
        redis.pcall('HINCRBY', KEYS[2], 'evicted', 1)
      end
    end
  end
  if hit then
    out[i] = v
  else
    redis.pcall('HINCRBY', KEYS[2], 'misses', 1)
    redis.pcall('HINCRBY', KEYS[2], 'mm:' .. model, 1)
    out[i] = false
  end
end
return out
