--[[
  put_release-4: the single-flight lease holder stores its computed entry (exactly as put-3)
  and releases its lease in the same script call (one round trip).

  KEYS[1]  entry key      {P:s}:e:<digest>
  KEYS[2]  index key      {P:s}:i           (sorted set: member = digest, score = expiry ms)
  KEYS[3]  stats key      {P:s}:s
  KEYS[4]  lease key      {P:s}:l:<digest>  (deleted only if it still holds ARGV[5])

  ARGV[1]  digest         the request digest (the index member)
  ARGV[2]  payload        envelope bytes
  ARGV[3]  ttl_ms         time to live in milliseconds (integer >= 0; 0 = no expiry)
  ARGV[4]  prune          at most this many expired index members to remove (0..1000)
  ARGV[5]  token          the holder's lease token

  Returns
    array {added, released}
      added     1 if the digest was not in the index (a new entry), else 0
      released  1 if the lease was still ours and was deleted, else 0 (it had expired)
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
local released = 0
if redis.call('GET', KEYS[4]) == ARGV[5] then
  redis.call('DEL', KEYS[4])
  released = 1
end
return {added, released}
