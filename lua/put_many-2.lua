--[[
  put_many-2: store up to 998 entries of ONE shard with one TTL, index them, count each put,
  prune expired index members; the batch twin of put-3, in one script call.

  Fixed keys: 2. The call passes more keys after them (variadic): numkeys = 2 + n.
  KEYS[1]      index key      {P:s}:i           (sorted set: member = digest, score = expiry ms)
  KEYS[2]      stats key      {P:s}:s           (hash of integer counters)
  KEYS[3..n+2] entry keys     {P:s}:e:<digest>  (one per item, in item order; n <= 998, so a
                              call never names more than 1000 keys; a later duplicate wins)

  ARGV[1]      ttl_ms         time to live in milliseconds (integer >= 0; 0 = no expiry)
  ARGV[2]      prune          at most this many expired index members to remove (0..1000)
  ARGV[2i+1]   digest         digest of item i (i = 1..n), the index member of KEYS[i+2]
  ARGV[2i+2]   payload        envelope bytes of item i

  Returns
    integer  how many digests were not in the index before (new entries).

  Expiry is absolute server time (TIME + ttl_ms, PXAT), also the index score, as in put-3.
]]
local n = #KEYS - 2
if n > 998 then
  return redis.error_reply('put_many-2: at most 998 entry keys per call')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local added = 0
for i = 1, n do
  local ek = KEYS[i + 2]
  local digest = ARGV[2 * i + 1]
  local payload = ARGV[2 * i + 2]
  if ttl > 0 then
    local exp = now + ttl
    redis.call('SET', ek, payload, 'PXAT', exp)
    added = added + redis.call('ZADD', KEYS[1], exp, digest)
  else
    redis.call('SET', ek, payload)
    added = added + redis.call('ZADD', KEYS[1], 'inf', digest)
  end
end
redis.call('HINCRBY', KEYS[2], 'puts', n)
local limit = math.min(tonumber(ARGV[2]), 1000)
if limit > 0 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, limit)
  if #old > 0 then
    redis.call('ZREM', KEYS[1], unpack(old))
    redis.call('HINCRBY', KEYS[2], 'expired', #old)
  end
end
return added
