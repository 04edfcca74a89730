--[[
  include enforce_cap: keep a shard within its max_entries cap.

  enforce_cap(index_key, stats_key, now, cap, fresh)
    cap = 0: nothing. Else, while the shard has more than cap live members (ZCOUNT now +inf,
    now in ms), remove the surplus in index order (soonest expiry first; entries without
    expiry after, oldest write first: see store_entry), skipping the digests in the set fresh
    (written by this call) unless the call itself wrote more than cap; delete their entries
    (derived from the index key's name: same hash tag, same slot) and count them as evicted.
    At most 1000 removals a call (a put adds at most 998 entries, so the surplus of a call
    never exceeds that). -> removed count.

  Uses no KEYS or ARGV of its own: callers pass them in.
]]
local function enforce_cap(index_key, stats_key, now, cap, fresh)
  if cap <= 0 then
    return 0
  end
  local excess = redis.call('ZCOUNT', index_key, now, '+inf') - cap
  if excess <= 0 then
    return 0
  end
  excess = math.min(excess, 1000)
  local nfresh = 0
  for _ in pairs(fresh) do
    nfresh = nfresh + 1
  end
  local rows = redis.call('ZRANGEBYSCORE', index_key, now, '+inf', 'LIMIT', 0, excess + nfresh)
  local victims = {}
  for _, m in ipairs(rows) do  -- older entries first
    if #victims < excess and not fresh[m] then
      victims[#victims + 1] = m
    end
  end
  for _, m in ipairs(rows) do  -- the call alone wrote more than the cap
    if #victims < excess and fresh[m] then
      victims[#victims + 1] = m
    end
  end
  if #victims == 0 then
    return 0
  end
  local base = string.sub(index_key, 1, -2) .. 'e:'
  local keys = {}
  for i, m in ipairs(victims) do
    keys[i] = base .. m
  end
  redis.call('DEL', unpack(keys))
  redis.call('ZREM', index_key, unpack(victims))
  redis.call('HINCRBY', stats_key, 'evicted', #victims)
  return #victims
end
