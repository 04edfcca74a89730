--[[
  drop_corrupt-3: undo a hit whose body the client could not use, and drop or keep the entry.

  get-3 checks only the envelope header; the client decodes the body. When the body is bad,
  the hit that get-3 counted becomes a miss. An undecodable body (mode "1") is deleted,
  unless it was replaced in the meantime by a different value, and counted corrupt only by
  the call that deleted it (one corrupt entry read N times counts corrupt once). A body that
  decodes but does not validate as the reader's response model (mode "0") is kept for the
  readers that can use it, and counted rejected.

  KEYS[1]  entry key      {P:s}:e:<digest>
  KEYS[2]  index key      {P:s}:i
  KEYS[3]  stats key      {P:s}:s

  ARGV[1]  digest         the request digest (the index member)
  ARGV[2]  model          model name of the per-model counters to correct
  ARGV[3]  payload        the exact bytes the client could not use (their header says what
                          the hit credited: count_saved takes that and the hit back from
                          the record m:<model>)
  ARGV[4]  mode           "1" = undecodable: delete it, count corrupt; "0" = rejected by the
                          reader's model: keep it, count rejected

  Returns
    integer  1 if the entry still held those bytes and was deleted, else 0.

  Writes use pcall: at maxmemory (noeviction) the bad entry is still dropped; the entry is
  read with pcall too (a key of another type is simply not the same bytes).
]]
--- @include "drop_unusable"
--- @include "count_saved"
count_saved(KEYS[3], ARGV[2], ARGV[3], -1, -1)
redis.pcall('HINCRBY', KEYS[3], 'misses', 1)
redis.pcall('HINCRBY', KEYS[3], 'mm:' .. ARGV[2], 1)
return drop_unusable(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[3], ARGV[4] == '1')
