package redis

import goredis "github.com/redis/go-redis/v9"

// nextToken is Lua shared by the scripts that grant a lock: it advances the fence at
// KEYS[fence] to max(last+1, server time in µs) and returns it as a decimal string.
const nextToken = `
local function next_token(fence)
  local t = redis.call('TIME')
  local floor = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('GET', fence) or '0')
  local token = string.format('%d', math.max(last + 1, floor))
  redis.call('SET', fence, token)
  return token
end
`

// acquire: KEYS lock, fence; ARGV owner, ttl ms. Returns the token, or false when held.
var acquireScript = goredis.NewScript(nextToken + `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = next_token(KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return token
`)

// renew: KEYS lock; ARGV "<owner>|<token>", ttl ms. Returns 1 when renewed.
var renewScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// release: KEYS lock; ARGV "<owner>|<token>". Returns 1 when released.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

// cmpDecimal compares two canonical decimal int64 strings exactly (Lua numbers are
// doubles and would round priorities beyond 2^53).
const cmpDecimal = `
local function cmp(a, b)
  if a == b then return 0 end
  local na, nb = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
  if na ~= nb then return na and -1 or 1 end
  local c
  if #a ~= #b then c = (#a < #b) and -1 or 1 else c = (a < b) and -1 or 1 end
  if na then c = -c end
  return c
end
`

// enqueue: KEYS list, prio; ARGV id, priority. Puts id just behind the last item whose
// priority is at least its own; an id already there with the same priority stays put.
var enqueueScript = goredis.NewScript(cmpDecimal + `
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old == ARGV[2] then return 0 end
if old then redis.call('LREM', KEYS[1], 1, ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #ids, 1, -1 do
  if cmp(redis.call('HGET', KEYS[2], ids[i]), ARGV[2]) >= 0 then
    redis.call('LINSERT', KEYS[1], 'AFTER', ids[i], ARGV[1])
    return 1
  end
end
redis.call('LPUSH', KEYS[1], ARGV[1])
return 1
`)

// move: KEYS list, prio; ARGV id, before ("" = tail). Returns 0 moved, 1 no id,
// 2 no before.
var moveScript = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 1 end
if ARGV[2] ~= '' and redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return 2 end
if ARGV[1] == ARGV[2] then return 0 end
redis.call('LREM', KEYS[1], 1, ARGV[1])
if ARGV[2] == '' then
  redis.call('RPUSH', KEYS[1], ARGV[1])
else
  redis.call('LINSERT', KEYS[1], 'BEFORE', ARGV[2], ARGV[1])
end
return 0
`)

// remove: KEYS list, prio; ARGV id. Returns 1 when removed.
var removeScript = goredis.NewScript(`
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('LREM', KEYS[1], 1, ARGV[1])
return 1
`)

// list: KEYS list, prio. Returns id1, priority1, id2, priority2, … head first, from one
// consistent snapshot.
var listScript = goredis.NewScript(`
local out = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id)
end
return out
`)

// popHead: KEYS list, prio, lock, fence; ARGV ttl ms. Returns {"empty"}, {"locked"} or
// {"ok", id, priority, token}.
var popHeadScript = goredis.NewScript(nextToken + `
local id = redis.call('LINDEX', KEYS[1], 0)
if not id then return {'empty'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'locked'} end
redis.call('LPOP', KEYS[1])
local prio = redis.call('HGET', KEYS[2], id)
redis.call('HDEL', KEYS[2], id)
local token = next_token(KEYS[4])
redis.call('SET', KEYS[3], id .. '|' .. token, 'PX', ARGV[1])
return {'ok', id, prio, token}
`)
