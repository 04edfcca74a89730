--[[
  put-3: store one entry with its TTL, index it, count the put, prune expired index members.

  KEYS[1]  entry key      {P:s}:e:<digest>
  KEYS[2]  index key      {P:s}:i           (sorted set: member = digest, score = expiry ms)
  KEYS[3]  stats key      {P:s}:s

  ARGV[1]  digest         the request digest (the index member)
  ARGV[2]  payload        envelope bytes
  ARGV[3]  ttl_ms         time to live in milliseconds (integer >= 0; 0 = no expiry)
  ARGV[4]  prune          at most this many expired index members to remove (0..1000)

  Returns
    integer  1 if the digest was not in the index (a new entry), 0 if it replaced one.

  Expiry is absolute server time (TIME + ttl_ms, PXAT) and the same number is the index
  score, so the index knows exactly when the entry stops being live.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local added
if ttl > 0 then
  local exp = now + ttl
  redis.call('SET', KEYS[1], ARGV[2], 'PXAT', exp)
  added = redis.call('ZADD', KEYS[2], exp, ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
  added = redis.call('ZADD', KEYS[2], 'inf', ARGV[1])
end
redis.call('HINCRBY', KEYS[3], 'puts', 1)
local limit = math.min(tonumber(ARGV[4]), 1000)
if limit > 0 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now, 'LIMIT', 0, limit)
  if #old > 0 then
    redis.call('ZREM', KEYS[2], unpack(old))
    redis.call('HINCRBY', KEYS[3], 'expired', #old)
  end
end
return added
