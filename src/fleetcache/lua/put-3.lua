--[[
  put-3: store one entry with its TTL, index it, count the put, prune expired index members.

  KEYS[1]  entry key      {P:s}:e:<digest>
  KEYS[2]  index key      {P:s}:i           (sorted set: member = digest, score = expiry ms)
  KEYS[3]  stats key      {P:s}:s

  ARGV[1]  digest         the request digest (the index member)
  ARGV[2]  payload        envelope bytes
  ARGV[3]  ttl_ms         time to live in milliseconds (integer >= 0; 0 = no expiry)
  ARGV[4]  prune          at most this many expired index members to remove (0..1000)
  ARGV[5]  cap            most live entries this shard may hold (integer; 0 = no cap): the
                          surplus is evicted (see includes/enforce_cap.lua), never
                          this entry itself

  Returns
    integer  1 if the digest was not in the index (a new entry), 0 if it replaced one.

  Expiry is absolute server time (TIME + ttl_ms, PXAT) and the same number is the index
  score, so the index knows exactly when the entry stops being live.
]]
--- @include "put_entry"
local cap = tonumber(ARGV[5]) or 0
local added = put_entry(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], tonumber(ARGV[3]),
  tonumber(ARGV[4]), cap)
return added
