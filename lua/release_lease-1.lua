--[[
  release_lease-1: give up a single-flight lease at once (compute failed), so a waiter can
  take over without waiting for it to expire. Compare-and-delete: only the holder's token
  deletes it.

  KEYS[1]  lease key      {P:s}:l:<digest>  (string: the holder's token)

  ARGV[1]  token          the caller's lease token

  Returns
    integer  1 if the lease held ARGV[1] and was deleted, else 0.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
