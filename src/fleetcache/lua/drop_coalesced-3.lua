--[[
  drop_coalesced-3: undo a coalesced answer whose body the client could not use, and drop or
  keep the entry (the get_or_lease-4 twin of drop_corrupt-3 for a waiter's poll).

  KEYS[1]  entry key      {P:s}:e:<digest>
  KEYS[2]  index key      {P:s}:i
  KEYS[3]  stats key      {P:s}:s

  ARGV[1]  digest         the request digest (the index member)
  ARGV[2]  model          model name of the per-model counters get_or_lease-4 credited
  ARGV[3]  payload        the exact bytes the client could not use (their header says what
                          get_or_lease-4 credited: count_saved takes exactly that back from
                          the record m:<model>; the record's hits are not touched)
  ARGV[4]  mode           "1" = undecodable: delete it, count corrupt (only if this call
                          deleted it); "0" = rejected by the reader's model: keep it, count
                          rejected

  Returns
    integer  1 if the entry still held those bytes and was deleted, else 0.

  Writes use pcall: at maxmemory (noeviction) the bad entry is still dropped.
]]
--- @include "drop_unusable"
--- @include "count_saved"
redis.pcall('HINCRBY', KEYS[3], 'coalesced', -1)
count_saved(KEYS[3], ARGV[2], ARGV[3], -1, 0)
return drop_unusable(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[3], ARGV[4] == '1')
