"""The Lua scripts of the Redis Streams queue: every state change of a queue in one atomic step.

Each script is the shared prelude (`_PRELUDE`: the queue's keys, its settings, the server's clock
and the helpers below) followed by its own body. Every script gets the same keys (`KEY_NAMES`,
in that order) and starts with the same arguments (`group`, the holder name of messages no
consumer holds, `max_receive_count`, retention in ms, the DLQ reason of exhausted messages);
its own arguments follow from `ARGV[6]`. Times are the Redis server's milliseconds (`TIME`).

The data (see `redis_streams` for the design):
  stream         the messages, one entry each (fields id, body, sent, and due for a message
                 that was delayed: when it came due); the consumer group's
                 pending entries list (PEL) holds the received ones, with their holder and
                 delivery count (= receive count)
  pending        sorted set: received entries that may be received again, by visible-at
  expiring       sorted set: received entries on their last receive, by when they die
  delayed        sorted set: message ids sent with a delay, by when they are due
  delayed_bodies hash: message id -> "<sent ms> <body>" of a delayed message
  receipts       hash: entry id -> the receipt token of its current receive
  errors         hash: entry id -> the last failure reason given with change_visibility
  received       hash: entry id -> when it was last received
  consumers      hash: consumer id -> JSON {pid, host, node, started}
  leases         sorted set: consumer id -> when its lease runs out
  wake           a stream of one entry, added to when messages become visible without a new
                 stream entry, so long polls wake up
  dlq            the dead-letter stream (fields id, body, sent, receives, reason)
"""

from __future__ import annotations

KEY_NAMES = (
    "",  # the stream itself: `<prefix>:<name>`
    "dlq",
    "pending",
    "expiring",
    "delayed",
    "delayed_bodies",
    "receipts",
    "errors",
    "received",
    "consumers",
    "leases",
    "wake",
)

_PRELUDE = """
local STREAM, DLQ, PENDING, EXPIRING = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local DELAYED, DELAYED_BODIES, RECEIPTS, ERRORS = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local RECEIVED, CONSUMERS, LEASES, WAKE = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local GROUP, NOBODY = ARGV[1], ARGV[2]
local MAX_RECEIVES, RETENTION_MS = tonumber(ARGV[3]), tonumber(ARGV[4])
local REASON_MAX_RECEIVES = ARGV[5]

local clock = redis.call('TIME')
local NOW = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- The group is made with the stream, and again should the stream have been deleted.
redis.pcall('XGROUP', 'CREATE', STREAM, GROUP, '0', 'MKSTREAM')

local function ms(n)
  return string.format('%d', n)
end

local function fields(flat)
  local f = {}
  for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
  return f
end

-- {id, consumer, idle, delivery count} of a pending entry, or nil.
local function pending_entry(id)
  local p = redis.call('XPENDING', STREAM, GROUP, id, id, 1)
  if #p == 0 then return nil end
  return p[1]
end

-- Hide a received entry until `until_ms`: receivable again then, or dead if it has no receives
-- left.
local function hide(id, until_ms, count)
  if count >= MAX_RECEIVES then
    redis.call('ZREM', PENDING, id)
    redis.call('ZADD', EXPIRING, until_ms, id)
  else
    redis.call('ZREM', EXPIRING, id)
    redis.call('ZADD', PENDING, until_ms, id)
  end
end

local function forget(id)
  redis.call('XACK', STREAM, GROUP, id)
  redis.call('XDEL', STREAM, id)
  redis.call('ZREM', PENDING, id)
  redis.call('ZREM', EXPIRING, id)
  redis.call('HDEL', RECEIPTS, id)
  redis.call('HDEL', ERRORS, id)
  redis.call('HDEL', RECEIVED, id)
end

-- Move an entry to the DLQ with `reason` (false: its last error, else REASON_MAX_RECEIVES).
local function bury(id, reason)
  local entry = redis.call('XRANGE', STREAM, id, id)
  local p = pending_entry(id)
  if #entry == 1 then
    local f = fields(entry[1][2])
    reason = reason or redis.call('HGET', ERRORS, id) or REASON_MAX_RECEIVES
    redis.call('XADD', DLQ, '*', 'id', f.id, 'body', f.body, 'sent', f.sent,
      'receives', p and p[4] or 0, 'reason', reason)
  end
  forget(id)
end

local function holds(id, token)
  return redis.call('HGET', RECEIPTS, id) == token
end

local function wake()
  redis.call('XADD', WAKE, 'MAXLEN', '1', '*', 'w', '1')
end

-- Delayed messages that are due join the stream; exhausted entries whose time ran out go to the
-- DLQ; up to `limit` stream entries past retention are purged and expired dead letters trimmed.
-- Returns {purged, more}: `more` when the purge stopped at `limit`.
local function sweep(limit)
  local purged = 0
  local cutoff = math.max(NOW - RETENTION_MS, 0)
  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', NOW, 'WITHSCORES')
  for i = 1, #due, 2 do
    local mid = due[i]
    local packed = redis.call('HGET', DELAYED_BODIES, mid)
    if packed then
      local space = string.find(packed, ' ', 1, true)
      local sent = string.sub(packed, 1, space - 1)
      if tonumber(sent) > cutoff then
        redis.call('XADD', STREAM, '*', 'id', mid, 'body', string.sub(packed, space + 1),
          'sent', sent, 'due', due[i + 1])
      else
        purged = purged + 1
      end
      redis.call('HDEL', DELAYED_BODIES, mid)
    end
    redis.call('ZREM', DELAYED, mid)
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', EXPIRING, '-inf', NOW)) do
    bury(id, false)
  end
  local old = redis.call('XRANGE', STREAM, '-', ms(cutoff), 'COUNT', limit)
  for _, entry in ipairs(old) do forget(entry[1]) end
  purged = purged + #old + redis.call('XTRIM', DLQ, 'MINID', ms(cutoff + 1))
  return {purged, #old >= limit and 1 or 0}
end

-- Hand the entries `name` holds to nobody, visible at once if still hidden (an entry that has
-- no time yet is made visible too); drop the consumer from the group. Returns how many were
-- hidden.
local function release(name)
  local released = 0
  while true do
    local held = redis.call('XPENDING', STREAM, GROUP, '-', '+', 1000, name)
    if #held == 0 then break end
    local ids = {}
    for _, p in ipairs(held) do
      local id = p[1]
      local at = redis.call('ZSCORE', PENDING, id) or redis.call('ZSCORE', EXPIRING, id)
      if not at or tonumber(at) > NOW then
        hide(id, NOW, p[4])
        released = released + 1
      end
      ids[#ids + 1] = id
    end
    ids[#ids + 1] = 'JUSTID'
    redis.call('XCLAIM', STREAM, GROUP, NOBODY, 0, unpack(ids))
  end
  redis.call('XGROUP', 'DELCONSUMER', STREAM, GROUP, name)
  return released
end

local function register(id, pid, host, node, lease_ms)
  redis.call('HSET', CONSUMERS, id,
    cjson.encode({pid = tonumber(pid), host = host, node = node, started = NOW}))
  redis.call('ZADD', LEASES, NOW + lease_ms, id)
end

local function unregister(id)
  redis.call('HDEL', CONSUMERS, id)
  redis.call('ZREM', LEASES, id)
end

-- {id, identity JSON, lease ms} of every registered consumer.
local function registry()
  local out = {}
  local all = redis.call('HGETALL', CONSUMERS)
  for i = 1, #all, 2 do
    out[#out + 1] = {all[i], all[i + 1], redis.call('ZSCORE', LEASES, all[i]) or '0'}
  end
  return out
end
"""

# ARGV[6..]: message id, body, delay ms.
SEND = """
local mid, body, delay = ARGV[6], ARGV[7], tonumber(ARGV[8])
if delay > 0 then
  redis.call('ZADD', DELAYED, NOW + delay, mid)
  redis.call('HSET', DELAYED_BODIES, mid, ms(NOW) .. ' ' .. body)
else
  redis.call('XADD', STREAM, '*', 'id', mid, 'body', body, 'sent', ms(NOW))
end
return 1
"""

# ARGV[6..]: consumer (or NOBODY), max messages, visibility ms, sweep limit, one receipt token
# per message. Returns {messages, ms until something may become visible (-1: nothing waits),
# last stream entry id, last wake id}; a message is {entry id, token, fields, receive count}.
RECEIVE = """
local consumer, n, visibility = ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
sweep(tonumber(ARGV[9]))
local out = {}
local function deliver(id, flat, count)
  local token = ARGV[10 + #out]
  redis.call('HSET', RECEIPTS, id, token)
  redis.call('HSET', RECEIVED, id, NOW)
  hide(id, NOW + visibility, count)
  out[#out + 1] = {id, token, flat, count}
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', PENDING, '-inf', NOW, 'LIMIT', 0, n)) do
  local p = pending_entry(id)
  if not p then
    forget(id)
  elseif p[4] >= MAX_RECEIVES then
    bury(id, false)
  else
    local claimed = redis.call('XCLAIM', STREAM, GROUP, consumer, 0, id)
    if claimed[1] and claimed[1][2] then
      deliver(id, claimed[1][2], p[4] + 1)
    else
      forget(id)
    end
  end
end
if #out < n then
  local read = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', n - #out,
    'STREAMS', STREAM, '>')
  if read and read[1] then
    for _, entry in ipairs(read[1][2]) do deliver(entry[1], entry[2], 1) end
  end
end
local wait = -1
if #out == 0 then
  local firsts = {
    redis.call('ZRANGE', PENDING, 0, 0, 'WITHSCORES'),
    redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES'),
  }
  for _, first in ipairs(firsts) do
    if first[2] then
      local left = math.max(tonumber(first[2]) - NOW, 0)
      if wait < 0 or left < wait then wait = left end
    end
  end
end
local last = redis.call('XREVRANGE', STREAM, '+', '-', 'COUNT', 1)
local woke = redis.call('XREVRANGE', WAKE, '+', '-', 'COUNT', 1)
return {out, wait, last[1] and last[1][1] or '0-0', woke[1] and woke[1][1] or '0-0'}
"""

# ARGV[6..]: entry id, token.
DELETE = """
local id = ARGV[6]
if not holds(id, ARGV[7]) then return 0 end
forget(id)
return 1
"""

# ARGV[6..]: entry id, token, timeout ms, reason ('' with has_reason '0': keep the last one).
CHANGE_VISIBILITY = """
local id, timeout = ARGV[6], tonumber(ARGV[8])
if not holds(id, ARGV[7]) then return 0 end
local p = pending_entry(id)
if not p then
  forget(id)
  return 0
end
if ARGV[10] == '1' then redis.call('HSET', ERRORS, id, ARGV[9]) end
hide(id, NOW + timeout, p[4])
redis.call('XCLAIM', STREAM, GROUP, NOBODY, 0, id, 'JUSTID')
if timeout == 0 then wake() end
return 1
"""

# ARGV[6..]: entry id, token, reason.
DEAD_LETTER = """
local id = ARGV[6]
if not holds(id, ARGV[7]) then return 0 end
bury(id, ARGV[8])
return 1
"""

# ARGV[6..]: DLQ entry ids. Returns how many moved (a missing entry was moved by someone else).
REDRIVE = """
local moved = 0
for i = 6, #ARGV do
  local entry = redis.call('XRANGE', DLQ, ARGV[i], ARGV[i])
  if #entry == 1 then
    local f = fields(entry[1][2])
    redis.call('XDEL', DLQ, ARGV[i])
    redis.call('XADD', STREAM, '*', 'id', f.id, 'body', f.body, 'sent', f.sent)
    moved = moved + 1
  end
end
return moved
"""

# ARGV[6]: purge limit. Returns {purged, more}.
SWEEP = """
return sweep(tonumber(ARGV[6]))
"""

# ARGV[6]: purge limit. Returns {visible, in flight, delayed, dead}.
STATS = """
sweep(tonumber(ARGV[6]))
local received = redis.call('XPENDING', STREAM, GROUP)[1]
local after = string.format('(%d', NOW)
return {
  redis.call('XLEN', STREAM) - received + redis.call('ZCOUNT', PENDING, '-inf', NOW),
  redis.call('ZCOUNT', PENDING, after, '+inf') + redis.call('ZCOUNT', EXPIRING, after, '+inf'),
  redis.call('ZCARD', DELAYED),
  redis.call('XLEN', DLQ),
}
"""

# ARGV[6]: purge limit. Returns the ms since the oldest receivable message became visible (0: none
# is): the first entry the group has not delivered yet (visible since it entered the stream: its
# id's time, or the `due` time of a delayed message) or the received entry visible again the
# longest.
OLDEST = """
sweep(tonumber(ARGV[6]))
local since = NOW
local last = '0-0'
for _, info in ipairs(redis.call('XINFO', 'GROUPS', STREAM)) do
  local f = fields(info)
  if f.name == GROUP then last = f['last-delivered-id'] end
end
local fresh = redis.call('XRANGE', STREAM, '(' .. last, '+', 'COUNT', 1)
if fresh[1] then
  local entered = tonumber(string.match(fresh[1][1], '^(%d+)'))
  since = math.min(since, tonumber(fields(fresh[1][2]).due) or entered)
end
local again = redis.call('ZRANGEBYSCORE', PENDING, '-inf', NOW, 'WITHSCORES', 'LIMIT', 0, 1)
if again[2] then since = math.min(since, tonumber(again[2])) end
return math.max(NOW - since, 0)
"""

# ARGV[6..]: consumer id, pid, host, node, lease ms; renew: whether to extend a registered
# lease (returning 1) rather than registering anew (returning 0).
REGISTER = """
local id, lease = ARGV[6], tonumber(ARGV[10])
if ARGV[11] == '1' and redis.call('HEXISTS', CONSUMERS, id) == 1 then
  redis.call('ZADD', LEASES, NOW + lease, id)
  return 1
end
register(id, ARGV[7], ARGV[8], ARGV[9], lease)
return 0
"""

# ARGV[6]: consumer id. Returns how many messages it held were made visible.
UNREGISTER = """
unregister(ARGV[6])
local released = release(ARGV[6])
if released > 0 then wake() end
return released
"""

# ARGV[6..]: ids of consumers known gone. Returns how many messages were made visible.
RECLAIM = """
for i = 6, #ARGV do unregister(ARGV[i]) end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', LEASES, '-inf', NOW)) do unregister(id) end
local released = 0
for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', STREAM, GROUP)) do
  local name = fields(info).name
  if name ~= NOBODY and redis.call('HEXISTS', CONSUMERS, name) == 0 then
    released = released + release(name)
  end
end
if released > 0 then wake() end
return released
"""

# Returns the registry (see `registry`).
CONSUMERS = """
return registry()
"""

# Returns {rows, registry}; a row is {entry id, fields, holder, receive count, visible-at ms,
# received ms, last error}.
IN_FLIGHT = """
local rows = {}
for _, hidden in ipairs({PENDING, EXPIRING}) do
  local ids = redis.call('ZRANGEBYSCORE', hidden, string.format('(%d', NOW), '+inf', 'WITHSCORES')
  for i = 1, #ids, 2 do
    local id = ids[i]
    local entry = redis.call('XRANGE', STREAM, id, id)
    local p = pending_entry(id)
    if #entry == 1 and p then
      rows[#rows + 1] = {id, entry[1][2], p[2], p[4], ids[i + 1],
        redis.call('HGET', RECEIVED, id), redis.call('HGET', ERRORS, id)}
    end
  end
end
return {rows, registry()}
"""


def script(body: str) -> str:
    """The full source of a script: the prelude, then `body`."""
    return _PRELUDE + body
