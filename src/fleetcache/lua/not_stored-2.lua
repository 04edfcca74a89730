--[[
  not_stored-2: count a response the client refused to store (its should_store said no: a
  truncated or filtered answer, an error, no content), and give up the caller's
  single-flight lease in the same call, so a waiter computes its own answer at once.

  KEYS[1]  stats key      {P:s}:s           (hash: integer counters, savings records m:<model>)
  KEYS[2]  lease key      {P:s}:l:<digest>  (deleted only if it holds ARGV[1])

  ARGV[1]  token          the caller's lease token; "" when the caller holds no lease

  Returns
    integer  1 if the lease held ARGV[1] and was deleted, else 0.

  The counter write uses pcall: at maxmemory (noeviction) the lease is still released.
]]
redis.pcall('HINCRBY', KEYS[1], 'not_stored', 1)
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
