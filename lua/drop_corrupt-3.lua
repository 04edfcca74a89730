--[[
  drop_corrupt-3: undo a hit whose body failed to decode in the client, and drop the entry.

  get-3 checks only the envelope header; the client decodes the body. When the body is bad,
  the hit that get-3 counted becomes a miss and the entry is deleted, unless it was replaced
  in the meantime by a different value.

  KEYS[1]  entry key      {P:s}:e:<digest>
  KEYS[2]  index key      {P:s}:i
  KEYS[3]  stats key      {P:s}:s

  ARGV[1]  digest         the request digest (the index member)
  ARGV[2]  model          model name of the per-model counters to correct
  ARGV[3]  tokens         tokens_saved that get-3 credited for this hit (integer >= 0)
  ARGV[4]  payload        the exact bytes that failed to decode

  Returns
    integer  1 if the entry still held those bytes and was deleted, else 0.

  Counter writes use pcall: at maxmemory (noeviction) the bad entry is still dropped.
]]
redis.pcall('HINCRBY', KEYS[3], 'hits', -1)
redis.pcall('HINCRBY', KEYS[3], 'mh:' .. ARGV[2], -1)
local tokens = tonumber(ARGV[3])
if tokens > 0 then
  redis.pcall('HINCRBY', KEYS[3], 'tokens_saved', -tokens)
end
redis.pcall('HINCRBY', KEYS[3], 'misses', 1)
redis.pcall('HINCRBY', KEYS[3], 'mm:' .. ARGV[2], 1)
redis.pcall('HINCRBY', KEYS[3], 'corrupt', 1)
if redis.call('GET', KEYS[1]) == ARGV[4] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
return 0
