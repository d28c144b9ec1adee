//! The Lua scripts of the Redis catalog: each change is one script, so it is
//! atomic, and every key it touches is found through an index key (never
//! `KEYS` or `SCAN` over the keyspace). Times are the server's (`TIME`).
//!
//! Keys, under the namespace's prefix `P` (`ARGV[1]`, e.g. `mq:`):
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `P incarnation` | string | the incarnation counter of all nodes, never behind `TIME` in µs |
//! | `P node: ID` | hash | `incarnation`, `addr`, `expires` (ms); `PEXPIRE`d with the lease |
//! | `P nodes` | sorted set | node ids by lease expiry |
//! | `P interest: SESSION` | hash | filter → `QOS:NODELEN:NODE[:GROUP]` |
//! | `P sessions` | set | sessions with interest |
//! | `P msgid` | string | the message id counter |
//! | `P m: ID` | hash | one offline message |
//! | `P q: RECIPIENT` | sorted set | the queue: message ids by id |
//! | `P d: RECIPIENT` | hash | dedup: `INCARNATION:SEQ:NODE` → id |
//! | `P x: RECIPIENT` | sorted set | ids of messages with a TTL, by expiry |
//! | `P queues` | set | recipients with a queue |
//!
//! The keys are computed inside the scripts, so the catalog needs one Redis
//! (with replicas if wanted), not Redis Cluster. The scripts read `TIME`
//! and then write, which needs effects replication: Redis 5 or later (the
//! catalog checks at open).

/// Prepends the helpers every script shares.
macro_rules! script {
    ($body:literal) => {
        concat!(
            "local p = ARGV[1]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function drop(r, id)
  local h = redis.call('HMGET', p .. 'm:' .. id, 'on', 'oi', 'os')
  if h[1] then
    redis.call('HDEL', p .. 'd:' .. r, h[2] .. ':' .. h[3] .. ':' .. h[1])
  end
  redis.call('DEL', p .. 'm:' .. id)
  redis.call('ZREM', p .. 'q:' .. r, id)
  redis.call('ZREM', p .. 'x:' .. r, id)
end
",
            $body
        )
    };
}

/// ARGV: prefix, node, addr, lease ms. Returns the new incarnation.
pub const REGISTER: &str = script!(
    "
local id, addr, lease = ARGV[2], ARGV[3], tonumber(ARGV[4])
local clock = redis.call('TIME')
local us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local expires = now() + lease
local inc = redis.call('INCR', p .. 'incarnation')
if inc < us then
  inc = us
  redis.call('SET', p .. 'incarnation', string.format('%d', inc))
end
local key = p .. 'node:' .. id
redis.call('DEL', key)
redis.call('HSET', key, 'incarnation', inc, 'addr', addr, 'expires', expires)
redis.call('PEXPIRE', key, lease)
redis.call('ZADD', p .. 'nodes', expires, id)
return inc
"
);

/// ARGV: prefix, node, incarnation held, lease ms. Returns `{1}` when renewed,
/// `{0}` when the node is gone or expired, `{0, current}` when the catalog
/// holds another incarnation.
pub const HEARTBEAT: &str = script!(
    "
local id, held, lease = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local key = p .. 'node:' .. id
local h = redis.call('HMGET', key, 'incarnation', 'expires')
if not h[1] then return {0} end
local cur, t = tonumber(h[1]), now()
if cur ~= held then return {0, cur} end
if tonumber(h[2]) <= t then return {0} end
redis.call('HSET', key, 'expires', t + lease)
redis.call('PEXPIRE', key, lease)
redis.call('ZADD', p .. 'nodes', t + lease, id)
return {1}
"
);

/// ARGV: prefix, node, incarnation held. Returns 0 when removed (or gone),
/// else the newer incarnation that stays.
pub const DEREGISTER: &str = script!(
    "
local id, held = ARGV[2], tonumber(ARGV[3])
local key = p .. 'node:' .. id
local cur = redis.call('HGET', key, 'incarnation')
if cur and tonumber(cur) > held then return tonumber(cur) end
redis.call('DEL', key)
redis.call('ZREM', p .. 'nodes', id)
return 0
"
);

/// ARGV: prefix. Returns `id, incarnation, addr, expires` per live node
/// whose hash is there, a field it lacks as nil (`HMGET`'s nil is `false`
/// in Lua, nil again in the reply), to be reported unreadable. A node
/// whose hash is gone is not live (its heartbeat finds it expired) and is
/// left out.
pub const LIVE_NODES: &str = script!(
    "
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'nodes', '(' .. now(), '+inf')) do
  local h = redis.call('HMGET', p .. 'node:' .. id, 'incarnation', 'addr', 'expires')
  if h[1] or h[2] or h[3] then
    table.insert(out, id)
    table.insert(out, h[1])
    table.insert(out, h[2])
    table.insert(out, h[3])
  end
end
return out
"
);

/// ARGV: prefix. Removes expired nodes; returns how many.
pub const REAP: &str = script!(
    "
local dead = redis.call('ZRANGEBYSCORE', p .. 'nodes', '-inf', now())
for _, id in ipairs(dead) do
  redis.call('DEL', p .. 'node:' .. id)
  redis.call('ZREM', p .. 'nodes', id)
end
return #dead
"
);

/// ARGV: prefix, session, filter, encoded interest.
pub const ADD_INTEREST: &str = script!(
    "
redis.call('HSET', p .. 'interest:' .. ARGV[2], ARGV[3], ARGV[4])
redis.call('SADD', p .. 'sessions', ARGV[2])
return 1
"
);

/// ARGV: prefix, session, filter. Returns 1 if there was such interest.
pub const REMOVE_INTEREST: &str = script!(
    "
local key = p .. 'interest:' .. ARGV[2]
local gone = redis.call('HDEL', key, ARGV[3])
if redis.call('EXISTS', key) == 0 then redis.call('SREM', p .. 'sessions', ARGV[2]) end
return gone
"
);

/// ARGV: prefix, session. Returns how many filters it had.
pub const FORGET_SESSION: &str = script!(
    "
local key = p .. 'interest:' .. ARGV[2]
local had = redis.call('HLEN', key)
redis.call('DEL', key)
redis.call('SREM', p .. 'sessions', ARGV[2])
return had
"
);

/// ARGV: prefix. Returns `session, filter, encoded` per interest.
pub const INTERESTS: &str = script!(
    "
local out = {}
for _, s in ipairs(redis.call('SMEMBERS', p .. 'sessions')) do
  local h = redis.call('HGETALL', p .. 'interest:' .. s)
  for i = 1, #h, 2 do
    table.insert(out, s)
    table.insert(out, h[i])
    table.insert(out, h[i + 1])
  end
end
return out
"
);

/// ARGV: prefix, recipient, limit, then per message: ttl ms (0: none),
/// origin node, origin incarnation, origin seq, topic, payload, meta.
/// Returns per message, in order, `1, id` when stored, `2, id` for a
/// duplicate, `3, 0` when the queue was full.
pub const ENQUEUE: &str = script!(
    "
local r, limit = ARGV[2], tonumber(ARGV[3])
local t = now()
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'x:' .. r, '-inf', t)) do drop(r, id) end
local out = {}
for i = 4, #ARGV - 6, 7 do
  local ttl, on, oi, os = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local dk = oi .. ':' .. os .. ':' .. on
  local earlier = redis.call('HGET', p .. 'd:' .. r, dk)
  if earlier then
    table.insert(out, 2)
    table.insert(out, tonumber(earlier))
  elseif redis.call('ZCARD', p .. 'q:' .. r) >= limit then
    table.insert(out, 3)
    table.insert(out, 0)
  else
    local id = redis.call('INCR', p .. 'msgid')
    local m = p .. 'm:' .. id
    redis.call('HSET', m, 'topic', ARGV[i + 4], 'payload', ARGV[i + 5], 'meta', ARGV[i + 6],
      'on', on, 'oi', oi, 'os', os, 'enq', t)
    if ttl > 0 then
      redis.call('HSET', m, 'exp', t + ttl)
      redis.call('ZADD', p .. 'x:' .. r, t + ttl, id)
    end
    redis.call('ZADD', p .. 'q:' .. r, id, id)
    redis.call('HSET', p .. 'd:' .. r, dk, id)
    table.insert(out, 1)
    table.insert(out, id)
  end
end
if #out > 0 then redis.call('SADD', p .. 'queues', r) end
return out
"
);

/// ARGV: prefix, recipient, after id, max. Returns `id, topic, payload, meta,
/// origin node, incarnation, seq, enqueued, expires (or nil)` per message,
/// skipping the expired ones; a row whose expiry is not a number is returned
/// (to be reported unreadable), not compared.
pub const READ: &str = script!(
    "
local r, after, max = ARGV[2], ARGV[3], tonumber(ARGV[4])
local q, t, out, n, offset = p .. 'q:' .. r, now(), {}, 0, 0
while n < max do
  local ids = redis.call('ZRANGEBYSCORE', q, '(' .. after, '+inf', 'LIMIT', offset, max)
  if #ids == 0 then break end
  offset = offset + #ids
  for _, id in ipairs(ids) do
    local h = redis.call('HMGET', p .. 'm:' .. id,
      'topic', 'payload', 'meta', 'on', 'oi', 'os', 'enq', 'exp')
    -- An expiry that is not a number is returned as it is: unreadable.
    local exp = h[8] and tonumber(h[8])
    if n < max and (not exp or exp > t) then
      n = n + 1
      table.insert(out, id)
      for i = 1, 8 do table.insert(out, h[i]) end
    end
  end
end
return out
"
);

/// ARGV: prefix, recipient. Returns how many unexpired messages the queue
/// holds: what [`READ`] would return.
pub const QUEUE_LEN: &str = script!(
    "
local r = ARGV[2]
return redis.call('ZCARD', p .. 'q:' .. r) - redis.call('ZCOUNT', p .. 'x:' .. r, '-inf', now())
"
);

/// ARGV: prefix, recipient, ids... Returns how many were still queued.
pub const ACK: &str = script!(
    "
local r, n = ARGV[2], 0
for i = 3, #ARGV do
  if redis.call('ZSCORE', p .. 'q:' .. r, ARGV[i]) then
    drop(r, ARGV[i])
    n = n + 1
  end
end
if redis.call('EXISTS', p .. 'q:' .. r) == 0 then redis.call('SREM', p .. 'queues', r) end
return n
"
);

/// ARGV: prefix. Removes every key of the namespace, found through the indexes.
pub const DESTROY: &str = script!(
    "
for _, id in ipairs(redis.call('ZRANGE', p .. 'nodes', 0, -1)) do
  redis.call('DEL', p .. 'node:' .. id)
end
for _, s in ipairs(redis.call('SMEMBERS', p .. 'sessions')) do
  redis.call('DEL', p .. 'interest:' .. s)
end
for _, r in ipairs(redis.call('SMEMBERS', p .. 'queues')) do
  for _, id in ipairs(redis.call('ZRANGE', p .. 'q:' .. r, 0, -1)) do
    redis.call('DEL', p .. 'm:' .. id)
  end
  redis.call('DEL', p .. 'q:' .. r, p .. 'd:' .. r, p .. 'x:' .. r)
end
redis.call('DEL', p .. 'nodes', p .. 'sessions', p .. 'queues', p .. 'incarnation', p .. 'msgid')
return 1
"
);
