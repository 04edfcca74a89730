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
  ARGV[6]  cap            most live entries this shard may hold (integer; 0 = no cap): the
                          surplus is evicted as in put-3, never this entry itself

  Returns
    array {added, released}
      added     1 if the digest was not in the index (a new entry), else 0
      released  1 if the lease was still ours and was deleted, else 0 (it had expired)
]]
--- @include "put_entry"
local cap = tonumber(ARGV[6]) or 0
local added = put_entry(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], tonumber(ARGV[3]),
  tonumber(ARGV[4]), cap)
local released = 0
if redis.call('GET', KEYS[4]) == ARGV[5] then
  redis.call('DEL', KEYS[4])
  released = 1
end
return {added, released}
