--[[
  layout-1: record a namespace's key layout on first use and return the recorded one, so a
  process that opens the namespace with another layout (shard count, key version) can refuse.

  KEYS[1]  meta key       {P}:meta  (string, no TTL)

  ARGV[1]  layout         this process's layout string, e.g. "fleetcache-1;shards=1"

  Returns
    bulk string  the layout recorded for the namespace (ARGV[1] if this call recorded it).
]]
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
