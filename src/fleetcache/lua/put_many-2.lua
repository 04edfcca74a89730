--[[
  put_many-2: store up to 998 entries of ONE shard with one TTL, index them, count each put,
  prune expired index members; the batch twin of put-3, in one script call.

  Fixed keys: 2. The call passes more keys after them (variadic): numkeys = 2 + n.
  KEYS[1]      index key      {P:s}:i           (sorted set: member = digest, score = expiry ms)
  KEYS[2]      stats key      {P:s}:s           (hash: integer counters, savings records m:<model>)
  KEYS[3..n+2] entry keys     {P:s}:e:<digest>  (one per item, in item order; n <= 998, so a
                              call never names more than 1000 keys; a later duplicate wins)

  ARGV[1]      ttl_ms         time to live in milliseconds (integer >= 0; 0 = no expiry)
  ARGV[2]      prune          at most this many expired index members to remove (0..1000)
  ARGV[3]      cap            most live entries this shard may hold (integer; 0 = no cap):
                              the surplus is evicted as in put-3, the items of this call last
  ARGV[2i+2]   digest         digest of item i (i = 1..n), the index member of KEYS[i+2]
  ARGV[2i+3]   payload        envelope bytes of item i

  Returns
    integer  how many digests were not in the index before (new entries).

  Expiry is absolute server time (TIME + ttl_ms, PXAT), also the index score, as in put-3.
]]
--- @include "now_ms"
--- @include "store_entry"
--- @include "prune_expired"
--- @include "enforce_cap"
local n = #KEYS - 2
if n > 998 then
  return redis.error_reply('put_many-2: at most 998 entry keys per call')
end
local now = now_ms()
local ttl = tonumber(ARGV[1])
local cap = tonumber(ARGV[3]) or 0
local added = 0
local fresh = {}
for i = 1, n do
  local d = ARGV[2 * i + 2]
  added = added + store_entry(KEYS[i + 2], KEYS[1], d, ARGV[2 * i + 3], ttl, now, cap > 0)
  fresh[d] = true
end
redis.call('HINCRBY', KEYS[2], 'puts', n)
prune_expired(KEYS[1], KEYS[2], now, tonumber(ARGV[2]))
enforce_cap(KEYS[1], KEYS[2], now, cap, fresh)
return added
