--[[
  release_lease-1: give up a single-flight lease at once, so the waiters need not wait for it
  to expire. Compare-and-set: only the holder's token is released.

  KEYS[1]  lease key      {P:s}:l:<digest>  (string: the holder's token)

  ARGV[1]  token          the caller's lease token
  ARGV[2]  marker_ms      milliseconds (integer >= 0): 0 = delete the lease (compute failed:
                          a waiter takes over); > 0 = replace it for that long by the marker
                          "!uncacheable" (the answer cannot be stored: every waiter computes
                          at once instead of taking the lease in turn)

  Returns
    integer  1 if the lease held ARGV[1] and was released, else 0.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  local marker_ms = tonumber(ARGV[2])
  if marker_ms > 0 then
    redis.call('SET', KEYS[1], '!uncacheable', 'PX', marker_ms)
  else
    redis.call('DEL', KEYS[1])
  end
  return 1
end
return 0
