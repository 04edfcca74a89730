--[[
  get_or_lease-4: single-flight read. Reads one entry; on a miss, grants the caller a lease to
  compute it, unless another caller holds one. Hit/miss and lease are decided atomically in
  one round trip.

  KEYS[1]  entry key      {P:s}:e:<digest>  (string: envelope bytes)
  KEYS[2]  index key      {P:s}:i           (sorted set: member = digest, score = expiry ms)
  KEYS[3]  stats key      {P:s}:s           (hash: integer counters, savings records m:<model>)
  KEYS[4]  lease key      {P:s}:l:<digest>  (string: the holder's token, with a PX expiry)

  ARGV[1]  digest         the request digest (the index member)
  ARGV[2]  model          model name: a hit counts in its savings record m:<model>, a miss
                          in misses and mm:<model>
  ARGV[3]  magic          the envelope magic "FC" (versions 1 and 2 are accepted)
  ARGV[4]  token          the caller's random lease token
  ARGV[5]  lease_ms       duration of a granted lease in milliseconds (integer >= 1): the
                          short unconfirmed grant, min(lease, 1 s); the holder extends it
                          to its full lease with renew_lease-1 once it has seen the grant
  ARGV[6]  mode           "1" = the request's first look: a hit or miss is counted as get-3
                          counts it; "0" = a waiter's poll: nothing is counted except, when
                          the entry has landed, coalesced and what it saved (count_saved
                          with hits 0: the amounts in the record m:<model>, not a hit)

  Returns
    {1, bytes}   the entry is there (envelope bytes)
    {2}          a miss; the lease KEYS[4] is now the caller's (SET NX PX lease_ms)
    {3, pttl}    a miss; another caller holds the lease, which ends in pttl ms (integer)
    {4}          a miss; the last holder's answer could not be stored (the lease holds the
                 marker "!uncacheable"): compute at once, without a lease

  A miss repairs the index like get-3 (member without entry: counted expired or evicted); an
  entry whose header is not a valid envelope is deleted, counted corrupt, and is a miss.
  Counter writes use pcall (OOM-tolerant), as in get-3.
]]
--- @include "lookup"
--- @include "count_hit"
--- @include "count_miss"
--- @include "count_saved"
local first = ARGV[6] == '1'
local v = lookup(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[3])
if v then
  if first then
    count_hit(KEYS[3], ARGV[2], v)
  else
    redis.pcall('HINCRBY', KEYS[3], 'coalesced', 1)
    count_saved(KEYS[3], ARGV[2], v, 1, 0)
  end
  return {1, v}
end
if first then
  count_miss(KEYS[3], ARGV[2])
end
if redis.call('SET', KEYS[4], ARGV[4], 'NX', 'PX', ARGV[5]) then
  return {2}
end
if redis.call('GET', KEYS[4]) == '!uncacheable' then
  return {4}
end
return {3, redis.call('PTTL', KEYS[4])}
