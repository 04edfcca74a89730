"""Bench-only Lua: reference scripts the product's ``get-3.lua`` is measured against, and
server-side fill scripts for the size curve. Never shipped, never run against a shared server."""

from __future__ import annotations

# The cheapest script that serves a hit and counts it (the guard's reference): GET, two
# HINCRBY (hits, per-model hits), the value back. KEYS[1] entry, KEYS[2] counters hash;
# ARGV[1] model name. Returns the value, or false (and counts a miss).
GET_AND_COUNT_LUA = """
local v = redis.call('GET', KEYS[1])
if v then
  redis.pcall('HINCRBY', KEYS[2], 'hits', 1)
  redis.pcall('HINCRBY', KEYS[2], 'mh:' .. ARGV[1], 1)
  return v
end
redis.pcall('HINCRBY', KEYS[2], 'misses', 1)
return false
"""

# The same with the third counter get-3 keeps (tokens_saved; a fixed 585 tokens here): what
# the product counts per hit, without its header check and miss-path repair.
GET_AND_COUNT_TOKENS_LUA = GET_AND_COUNT_LUA.replace(
    "  return v\n", "  redis.pcall('HINCRBY', KEYS[2], 'tokens_saved', 585)\n  return v\n", 1
)
assert GET_AND_COUNT_TOKENS_LUA != GET_AND_COUNT_LUA

NOOP_LUA = "return 1"
GET_ONLY_LUA = "return redis.call('GET', KEYS[1])"

# The alternative way of serving a hit (measured against get-3.lua): the payload comes back
# from a plain GET inside MULTI/EXEC and a small script only counts. KEYS[1] entry, KEYS[2]
# counters; ARGV[1] model, ARGV[2] accepted envelope prefix. Returns 1 (hit) or 0 (miss).
COUNT_ONLY_LUA = """
local h = redis.call('GETRANGE', KEYS[1], 0, 7)
if string.len(h) == 8 and string.sub(h, 1, 3) == ARGV[2] then
  local b1, b2, b3, b4 = string.byte(h, 5, 8)
  local tokens = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
  redis.pcall('HINCRBY', KEYS[2], 'hits', 1)
  redis.pcall('HINCRBY', KEYS[2], 'mh:' .. ARGV[1], 1)
  if tokens > 0 then redis.pcall('HINCRBY', KEYS[2], 'tokens_saved', tokens) end
  return 1
end
redis.pcall('HINCRBY', KEYS[2], 'misses', 1)
redis.pcall('HINCRBY', KEYS[2], 'mm:' .. ARGV[1], 1)
return 0
"""

# Fills a namespace server-side (bench only: writes keys it does not declare, standalone
# server). fleetcache layout: entry + index member. KEYS[1] index; ARGV[1] key base, ARGV[2]
# first number, ARGV[3] end (exclusive, at most 20,000 past ARGV[2]), ARGV[4] value.
FILL_FLEET_LUA = """
local base, n0, n1, val = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local members = {}
for i = n0, n1 - 1 do
  local d = string.format('%032x', i)
  redis.call('SET', base .. 'e:' .. d, val)
  members[#members + 1] = 'inf'
  members[#members + 1] = d
  if #members >= 1000 then
    redis.call('ZADD', KEYS[1], unpack(members))
    members = {}
  end
end
if #members > 0 then redis.call('ZADD', KEYS[1], unpack(members)) end
return n1 - n0
"""
# The incumbent's layout: one JSON key per entry. ARGV as above, no KEYS.
FILL_INCUMBENT_LUA = """
local base, n0, n1, val = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
for i = n0, n1 - 1 do
  redis.call('SET', base .. string.format('%064x', i), val)
end
return n1 - n0
"""
