--[[
  clear-2: delete one chunk of a shard's entries, walking its index; reset the shard's
  counters once the index is empty.

  KEYS[1]  index key      {P:s}:i   (its name ends in "i"; the entry keys are the same name
                                     with "i" replaced by "e:<digest>": same hash tag, so the
                                     same cluster slot)
  KEYS[2]  stats key      {P:s}:s

  ARGV[1]  chunk          entries to delete in this call (integer, clamped to 1..1000)

  Returns
    integer  index members left after this call; 0 means the shard is empty and its
             counters were deleted.
]]
local base = string.sub(KEYS[1], 1, -2) .. 'e:'
local n = math.max(1, math.min(tonumber(ARGV[1]), 1000))
local members = redis.call('ZRANGE', KEYS[1], 0, n - 1)
if #members > 0 then
  local keys = {}
  for i, m in ipairs(members) do
    keys[i] = base .. m
  end
  redis.call('DEL', unpack(keys))
  redis.call('ZREM', KEYS[1], unpack(members))
end
local left = redis.call('ZCARD', KEYS[1])
if left == 0 then
  redis.call('DEL', KEYS[2])
end
return left
