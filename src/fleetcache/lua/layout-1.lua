--[[
  layout-1: read a namespace's recorded key layout, and record it when it is absent (only
  when asked: looking never writes), so a process that opens the namespace with another
  layout (shard count, key version) can refuse, and a running fleet records its layout
  again after the record vanished (a restart without persistence, an eviction).

  KEYS[1]  meta key       {P}:meta  (string, no TTL)

  ARGV[1]  layout         this process's layout string, e.g. "fleetcache-1;shards=1"
  ARGV[2]  mode           "1" = record ARGV[1] if nothing is recorded (SET NX); "0" = read only

  Returns
    array {recorded, written}
      recorded  the layout recorded for the namespace (bulk string), or false when none is
                (read only, or the write was refused: maxmemory with noeviction)
      written   1 if this call recorded ARGV[1], else 0

  The read comes first and the write uses pcall: on a full server (noeviction) a namespace
  whose layout is recorded is checked without any write, and one whose record is missing
  is still usable (the record is written by a later call).
]]
local v = redis.call('GET', KEYS[1])
if v then
  return {v, 0}
end
if ARGV[2] == '1' then
  local ok = redis.pcall('SET', KEYS[1], ARGV[1], 'NX')
  if type(ok) == 'table' and ok['ok'] then
    return {ARGV[1], 1}
  end
  v = redis.call('GET', KEYS[1])
  if v then
    return {v, 0}
  end
end
return {false, 0}
