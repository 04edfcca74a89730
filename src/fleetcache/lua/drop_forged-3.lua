--[[
  drop_forged-3: undo a hit (or a coalesced answer) whose MAC did not verify in the client
  (signed namespaces: forged, unsigned, or moved from another key), count it as forged, and
  drop the entry.

  The Lua scripts check only the envelope header; a cache with a signing key checks the MAC
  before decoding anything. When it fails, what the read credited is taken back and the entry
  is deleted, unless it was replaced in the meantime by a different value.

  KEYS[1]  entry key      {P:s}:e:<digest>
  KEYS[2]  index key      {P:s}:i
  KEYS[3]  stats key      {P:s}:s

  ARGV[1]  digest         the request digest (the index member)
  ARGV[2]  model          model name of the per-model counters to correct
  ARGV[3]  payload        the exact bytes that failed to verify (their header says what the
                          read credited: count_saved takes exactly that back from the
                          record m:<model>)
  ARGV[4]  mode           "hit": the read was counted as a hit (get-3, get_many-2, the first
                          look of get_or_lease-4): the record's hits -1, misses/mm:<model>
                          +1; "coalesced": a waiter's poll of get_or_lease-4: coalesced -1

  Returns
    integer  1 if the entry still held those bytes and was deleted, else 0.

  Counter writes use pcall: at maxmemory (noeviction) the bad entry is still dropped.
]]
--- @include "count_saved"
if ARGV[4] == 'coalesced' then
  redis.pcall('HINCRBY', KEYS[3], 'coalesced', -1)
  count_saved(KEYS[3], ARGV[2], ARGV[3], -1, 0)
else
  count_saved(KEYS[3], ARGV[2], ARGV[3], -1, -1)
  redis.pcall('HINCRBY', KEYS[3], 'misses', 1)
  redis.pcall('HINCRBY', KEYS[3], 'mm:' .. ARGV[2], 1)
end
redis.pcall('HINCRBY', KEYS[3], 'forged', 1)
if redis.pcall('GET', KEYS[1]) == ARGV[3] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
return 0
