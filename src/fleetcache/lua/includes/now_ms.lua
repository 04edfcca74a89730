--[[
  include now_ms: now_ms() -> the server clock (TIME) in integer milliseconds.
  Uses no KEYS or ARGV of its own.
]]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
