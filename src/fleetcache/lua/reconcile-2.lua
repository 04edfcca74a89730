--[[
  reconcile-2: check one chunk of a shard's index against its entries and remove the members
  whose entry no longer exists (maxmemory eviction, a manual DEL, expiry).

  KEYS[1]  index key      {P:s}:i   (entry keys are derived as in clear-2: same hash tag)
  KEYS[2]  stats key      {P:s}:s

  ARGV[1]  start          rank in the index to start from (integer >= 0)
  ARGV[2]  chunk          members to check in this call (integer, clamped to 1..1000)

  Returns
    array {next, removed, checked}
      next     rank to pass as ARGV[1] on the next call
      removed  members removed in this call (counted as expired if their expiry time has
               passed on the server clock, else as evicted)
      checked  members looked at; fewer than chunk means the walk is complete
]]
--- @include "now_ms"
local base = string.sub(KEYS[1], 1, -2) .. 'e:'
local start = math.max(0, tonumber(ARGV[1]))
local n = math.max(1, math.min(tonumber(ARGV[2]), 1000))
local now = now_ms()
local rows = redis.call('ZRANGE', KEYS[1], start, start + n - 1, 'WITHSCORES')
local gone = {}
local expired = 0
local checked = #rows / 2
for i = 1, #rows, 2 do
  local m = rows[i]
  if redis.call('EXISTS', base .. m) == 0 then
    gone[#gone + 1] = m
    local s = tonumber(rows[i + 1])
    if s and s < now then
      expired = expired + 1
    end
  end
end
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  if expired > 0 then
    redis.call('HINCRBY', KEYS[2], 'expired', expired)
  end
  if #gone - expired > 0 then
    redis.call('HINCRBY', KEYS[2], 'evicted', #gone - expired)
  end
end
return {start + checked - #gone, #gone, checked}
