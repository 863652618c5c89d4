"""The Lua scripts of :class:`~asyncendpoints.store.redis.RedisJobStore`: one per transition.

Every script touches the keys of ONE job name, which all carry that name's hash tag
(:mod:`asyncendpoints.store.keys`), so each runs in one hash slot (Redis Cluster safe).
Job keys are passed as KEYS where the caller knows the ids; where a script finds the
ids itself (a claim pops them, a recovery reads the leases), it builds each job key from
the name's job-key prefix, which is declared in KEYS: ``<prefix>:{tag}:job:`` carries the
same tag, so every derived key is in the declared slot.

Time comes from Redis ``TIME`` (one call per script, CREATE excepted: see below): every
client shares Redis' clock,
and leases expire on it. Scores of the ``scheduled`` and ``leases`` zsets are
milliseconds since the epoch; timestamps stored in a job hash are seconds as text
(``"1712345678.123456"``).

Every script starts with :data:`PRELUDE`: the field names of a job hash and the status
names as Lua locals (generated from :mod:`asyncendpoints.store.keys`, so the two can
never disagree) and the helpers ``clock``, ``pushn``, ``promote`` and ``recover``.

Commands the hot-path scripts run (what ``INFO commandstats`` counts; measured by
``tests/core/store/test_command_budget.py``: 6.1 per job with ``create_many``, 7.1 with
one ``create`` per job, claims of 100 and batched completions):

* CREATE: per job HSET; per call LPUSH, and LPUSH notify only when the queue was empty
  (no TIME: a job's creation time is the creating client's clock).
* CLAIM: per job HGETALL + HSET; per call TIME, ZRANGEBYSCORE (due retries), RPOP,
  INCRBY (the fencing tokens), one ZADD of all leases, and LPUSH notify after a full
  batch (a peer may find more) or DEL notify after a short one.
* COMPLETE: per job ZREM (the fencing check) + HSET + PEXPIRE; per call TIME, HINCRBY.
"""

from __future__ import annotations

from asyncendpoints.job import JobStatus
from asyncendpoints.store import keys as k

CHUNK = 1000
"""Most ids a script passes to one command (Lua's ``unpack`` has a stack limit)."""

_LOCALS = {
    "F_ID": k.F_ID,
    "F_NAME": k.F_NAME,
    "F_STATUS": k.F_STATUS,
    "F_PAYLOAD": k.F_PAYLOAD,
    "F_CONTEXT": k.F_CONTEXT,
    "F_TENANT": k.F_TENANT,
    "F_RETRY": k.F_RETRY,
    "F_MAX_RETRIES": k.F_MAX_RETRIES,
    "F_TIMEOUT": k.F_TIMEOUT,
    "F_DELAY_UNTIL": k.F_DELAY_UNTIL,
    "F_CREATED": k.F_CREATED,
    "F_STARTED": k.F_STARTED,
    "F_COMPLETED": k.F_COMPLETED,
    "F_UPDATED": k.F_UPDATED,
    "F_RESULT": k.F_RESULT,
    "F_ERROR": k.F_ERROR,
    "F_WORKER": k.F_WORKER,
    "F_TOKEN": k.F_TOKEN,
    "F_PROGRESS": k.F_PROGRESS,
    "F_PROGRESS_MESSAGE": k.F_PROGRESS_MESSAGE,
    "S_COMPLETED": k.S_COMPLETED,
    "S_FAILED": k.S_FAILED,
    "S_CANCELED": k.S_CANCELED,
    "QUEUED": JobStatus.QUEUED.value,
    "SCHEDULED": JobStatus.SCHEDULED.value,
    "IN_PROGRESS": JobStatus.IN_PROGRESS.value,
    "COMPLETED": JobStatus.COMPLETED.value,
    "FAILED": JobStatus.FAILED.value,
    "CANCELED": JobStatus.CANCELED.value,
}

PRELUDE = (
    "\n".join(f"local {name} = '{value}'" for name, value in _LOCALS.items())
    + f"\nlocal CHUNK = {CHUNK}\n"
    + """
-- Redis' clock: seconds as exact text ('sec.usec') and milliseconds as a number.
local function clock()
  local t = redis.call('TIME')
  return t[1] .. '.' .. string.format('%06d', tonumber(t[2])),
         tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- cmd(key, ...list) in chunks; returns the last reply (for a push: the new length).
local function pushn(cmd, key, list)
  local reply = 0
  for i = 1, #list, CHUNK do
    reply = redis.call(cmd, key, unpack(list, i, math.min(i + CHUNK - 1, #list)))
  end
  return reply
end

-- Scheduled jobs due by now -> Queued, appended to the BACK of the queue in due order.
-- With a notify key, wakes a waiter when the queue was empty. Returns how many moved.
local function promote(scheduled, queue, notify, jprefix, now_s, now_ms, limit)
  local due = redis.call('ZRANGEBYSCORE', scheduled, '-inf', now_ms, 'LIMIT', 0, limit)
  local n = #due
  if n == 0 then return 0 end
  for i = 1, n do
    redis.call('HSET', jprefix .. due[i], F_STATUS, QUEUED, F_UPDATED, now_s)
  end
  pushn('ZREM', scheduled, due)
  local len = pushn('LPUSH', queue, due)
  if notify and len == n then redis.call('LPUSH', notify, '1') end
  return n
end

-- Leases `members` ('<id>:<token>') of one name lost their worker: each job goes to the
-- BACK of the queue counting the attempt, or to Failed (WorkerLost) when its retries
-- are spent. With `worker`, only that worker's leases are taken. Returns the job ids.
local function recover(leases, queue, notify, stats, jprefix, members, worker, retention,
                       now_s)
  local gone, requeue, out = {}, {}, {}
  local failed = 0
  for i = 1, #members do
    local id = string.match(members[i], '^([^:]+):')
    local key = jprefix .. id
    local f = redis.call('HMGET', key, F_STATUS, F_RETRY, F_MAX_RETRIES, F_WORKER)
    if not worker or f[4] == worker then
      gone[#gone + 1] = members[i]
      if f[1] == IN_PROGRESS then
        local retry = tonumber(f[2]) or 0
        if retry >= (tonumber(f[3]) or 0) then
          local err = cjson.encode({type = 'WorkerLost',
            message = 'worker ' .. tostring(f[4]) .. ' was lost; retries exhausted'})
          redis.call('HSET', key, F_STATUS, FAILED, F_ERROR, err, F_COMPLETED, now_s,
                     F_UPDATED, now_s)
          redis.call('PEXPIRE', key, retention)
          failed = failed + 1
        else
          redis.call('HSET', key, F_STATUS, QUEUED, F_RETRY, retry + 1, F_WORKER, '',
                     F_UPDATED, now_s)
          requeue[#requeue + 1] = id
        end
        out[#out + 1] = id
      end
    end
  end
  if #gone > 0 then pushn('ZREM', leases, gone) end
  if #requeue > 0 and pushn('LPUSH', queue, requeue) == #requeue then
    redis.call('LPUSH', notify, '1')
  end
  if failed > 0 then redis.call('HINCRBY', stats, S_FAILED, failed) end
  return out
end
"""
)

# KEYS[1] queue, KEYS[2] notify, KEYS[3] job-key prefix, KEYS[4..3+n] the n job keys,
#   KEYS[4+n] the idempotency key (only when ARGV[3] == '1'; then n == 1)
# ARGV[1] name, ARGV[2] max queue size ('' = none), ARGV[3] '1' when idempotent,
#   ARGV[4] idempotency TTL ms, ARGV[5] now (the creating client's clock: the one
#   timestamp not from Redis' TIME, which would cost a command per created job),
#   ARGV[6..] 6 per job: id, payload, context, tenant, max retries, timeout
#   ('' = none for context / tenant / timeout)
# Returns {'ok'} | {'full', queue length} | {'dup', HGETALL of the earlier job}
# The queue-size check is LPUSH's own reply: over the limit, LPOP undoes the push.
# Per job: HSET; per call: LPUSH (+ LPUSH notify when the queue was empty).
CREATE = (
    PRELUDE
    + """
local n = (#ARGV - 5) / 6
local idem = ARGV[3] == '1'
if idem then
  local seen = redis.call('SET', KEYS[4 + n], ARGV[6], 'NX', 'PX', ARGV[4], 'GET')
  if seen then
    -- the earlier job's key is derived from the declared job-key prefix (same slot)
    local h = redis.call('HGETALL', KEYS[3] .. seen)
    if #h > 0 then return {'dup', h} end
    redis.call('SET', KEYS[4 + n], ARGV[6], 'PX', ARGV[4])
  end
end
local ids = {}
for i = 1, n do ids[i] = ARGV[6 + (i - 1) * 6] end
local len = pushn('LPUSH', KEYS[1], ids)
local limit = tonumber(ARGV[2])
if limit and len > limit then
  redis.call('LPOP', KEYS[1], n)
  if idem then redis.call('DEL', KEYS[4 + n]) end
  return {'full', len - n}
end
local now_s = ARGV[5]
for i = 1, n do
  local b = 6 + (i - 1) * 6
  local f = {F_ID, ARGV[b], F_NAME, ARGV[1], F_STATUS, QUEUED, F_PAYLOAD, ARGV[b + 1],
             F_RETRY, 0, F_MAX_RETRIES, ARGV[b + 4], F_CREATED, now_s, F_UPDATED, now_s}
  if ARGV[b + 2] ~= '' then f[#f + 1] = F_CONTEXT; f[#f + 1] = ARGV[b + 2] end
  if ARGV[b + 3] ~= '' then f[#f + 1] = F_TENANT; f[#f + 1] = ARGV[b + 3] end
  if ARGV[b + 5] ~= '' then f[#f + 1] = F_TIMEOUT; f[#f + 1] = ARGV[b + 5] end
  redis.call('HSET', KEYS[3 + i], unpack(f))
end
if len == n then redis.call('LPUSH', KEYS[2], '1') end
return {'ok'}
"""
)

# KEYS[1] queue, KEYS[2] scheduled, KEYS[3] leases, KEYS[4] notify, KEYS[5] seq,
#   KEYS[6] job-key prefix (job keys of the popped ids are derived from it: same slot)
# ARGV[1] worker id, ARGV[2] count, ARGV[3] lease ms, ARGV[4] promote limit
# Returns {now, {token, HGETALL before the claim}...}
# A full batch pushes one notify token (a peer may find more); a short one drains the
# stale tokens (the queue is empty now, so no waiter can miss work by it).
CLAIM = (
    PRELUDE
    + """
local now_s, now_ms = clock()
promote(KEYS[2], KEYS[1], nil, KEYS[6], now_s, now_ms, ARGV[4])
local count = tonumber(ARGV[2])
local ids = redis.call('RPOP', KEYS[1], count)
if not ids then
  redis.call('DEL', KEYS[4])
  return {now_s}
end
local n = #ids
if n < count then redis.call('DEL', KEYS[4]) else redis.call('LPUSH', KEYS[4], '1') end
local last = redis.call('INCRBY', KEYS[5], n)
local expires = now_ms + tonumber(ARGV[3])
local out, z = {now_s}, {}
for i = 1, n do
  local key = KEYS[6] .. ids[i]
  local h = redis.call('HGETALL', key)
  local status, progress = nil, false
  for j = 1, #h, 2 do
    if h[j] == F_STATUS then status = h[j + 1]
    elseif h[j] == F_PROGRESS or h[j] == F_PROGRESS_MESSAGE then progress = true end
  end
  -- an id whose job is gone or not Queued (never expected) is dropped, not claimed
  if status == QUEUED then
    local token = last - n + i
    redis.call('HSET', key, F_STATUS, IN_PROGRESS, F_WORKER, ARGV[1], F_TOKEN, token,
               F_STARTED, now_s, F_UPDATED, now_s)
    if progress then redis.call('HDEL', key, F_PROGRESS, F_PROGRESS_MESSAGE) end
    z[#z + 1] = expires
    z[#z + 1] = ids[i] .. ':' .. token
    out[#out + 1] = {token, h}
  end
end
if #z > 0 then redis.call('ZADD', KEYS[3], unpack(z)) end
return out
"""
)

# KEYS[1] leases, KEYS[2] stats, KEYS[3..] one job key per item
# ARGV[1] retention ms, then 2 per item: lease member '<id>:<token>', result
# Returns {1 | 0 per item} (0: stale lease, nothing changed). ZREM of the lease member
# IS the fencing check: the member exists exactly while that token is current.
COMPLETE = (
    PRELUDE
    + """
local now_s = clock()
local out, done = {}, 0
for i = 1, #KEYS - 2 do
  if redis.call('ZREM', KEYS[1], ARGV[i * 2]) == 1 then
    redis.call('HSET', KEYS[i + 2], F_STATUS, COMPLETED, F_RESULT, ARGV[i * 2 + 1],
               F_COMPLETED, now_s, F_UPDATED, now_s)
    redis.call('PEXPIRE', KEYS[i + 2], ARGV[1])
    done = done + 1
    out[i] = 1
  else
    out[i] = 0
  end
end
if done > 0 then redis.call('HINCRBY', KEYS[2], S_COMPLETED, done) end
return out
"""
)

# KEYS[1] leases, KEYS[2] scheduled, KEYS[3] stats, KEYS[4] job
# ARGV[1] lease member, ARGV[2] job id, ARGV[3] error JSON,
#   ARGV[4] retry delay ms ('' = permanent), ARGV[5] retention ms
# Returns the new status, or 'stale'
FAIL = (
    PRELUDE
    + """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 'stale' end
local now_s, now_ms = clock()
local f = redis.call('HMGET', KEYS[4], F_RETRY, F_MAX_RETRIES)
local retry = tonumber(f[1]) or 0
if ARGV[4] == '' or retry >= (tonumber(f[2]) or 0) then
  redis.call('HSET', KEYS[4], F_STATUS, FAILED, F_ERROR, ARGV[3], F_COMPLETED, now_s,
             F_UPDATED, now_s)
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
  redis.call('HINCRBY', KEYS[3], S_FAILED, 1)
  return FAILED
end
local due = now_ms + tonumber(ARGV[4])
redis.call('HSET', KEYS[4], F_STATUS, SCHEDULED, F_RETRY, retry + 1,
           F_DELAY_UNTIL, string.format('%.3f', due / 1000), F_ERROR, ARGV[3],
           F_UPDATED, now_s)
redis.call('ZADD', KEYS[2], due, ARGV[2])
return SCHEDULED
"""
)

# KEYS[1] leases, KEYS[2] queue, KEYS[3] notify, KEYS[4..] one job key per lease
# ARGV 2 per lease: lease member, job id
# Returns how many were released: to the FRONT of the queue (RPOP side), in the given
# order, without counting an attempt. Stale leases are skipped.
RELEASE = (
    PRELUDE
    + """
local now_s = clock()
local ids = {}
for i = #KEYS - 3, 1, -1 do
  if redis.call('ZREM', KEYS[1], ARGV[i * 2 - 1]) == 1 then
    redis.call('HSET', KEYS[i + 3], F_STATUS, QUEUED, F_WORKER, '', F_UPDATED, now_s)
    ids[#ids + 1] = ARGV[i * 2]
  end
end
if #ids > 0 and pushn('RPUSH', KEYS[2], ids) == #ids then
  redis.call('LPUSH', KEYS[3], '1')
end
return #ids
"""
)

# KEYS[1] job, KEYS[2] queue, KEYS[3] scheduled, KEYS[4] leases, KEYS[5] stats (of the
#   job's name, which the caller read first: a job's name never changes)
# ARGV[1] job id, ARGV[2] retention ms
# Returns {'missing'} | {'invalid', status} | {'ok', HGETALL after the cancel}
CANCEL = (
    PRELUDE
    + """
local f = redis.call('HMGET', KEYS[1], F_STATUS, F_TOKEN)
local status = f[1]
if not status then return {'missing'} end
if status == QUEUED then
  redis.call('LREM', KEYS[2], 0, ARGV[1])
elseif status == SCHEDULED then
  redis.call('ZREM', KEYS[3], ARGV[1])
elseif status == IN_PROGRESS then
  redis.call('ZREM', KEYS[4], ARGV[1] .. ':' .. tostring(f[2]))
else
  return {'invalid', status}
end
local now_s = clock()
redis.call('HSET', KEYS[1], F_STATUS, CANCELED, F_COMPLETED, now_s, F_UPDATED, now_s)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[5], S_CANCELED, 1)
return {'ok', redis.call('HGETALL', KEYS[1])}
"""
)

# KEYS[1] leases, KEYS[2] job
# ARGV[1] lease member, ARGV[2] fraction, ARGV[3] message ('' with ARGV[4] == '0': none)
# Returns 1, or 0 for a stale lease
PROGRESS = (
    PRELUDE
    + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local now_s = clock()
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[2], F_PROGRESS, ARGV[2], F_PROGRESS_MESSAGE, ARGV[3],
             F_UPDATED, now_s)
else
  redis.call('HSET', KEYS[2], F_PROGRESS, ARGV[2], F_UPDATED, now_s)
  redis.call('HDEL', KEYS[2], F_PROGRESS_MESSAGE)
end
return 1
"""
)

# KEYS[1] leases
# ARGV[1] lease ms, ARGV[2..] lease members
# Returns the 1-based positions (in ARGV[2..]) of the members that are not current;
# the current ones now expire lease ms from now.
HEARTBEAT = (
    PRELUDE
    + """
local _, now_ms = clock()
local expires = now_ms + tonumber(ARGV[1])
local scores = redis.call('ZMSCORE', KEYS[1], unpack(ARGV, 2))
local z, lost = {}, {}
for i = 1, #scores do
  if scores[i] then
    z[#z + 1] = expires
    z[#z + 1] = ARGV[i + 1]
  else
    lost[#lost + 1] = i
  end
end
if #z > 0 then redis.call('ZADD', KEYS[1], 'XX', unpack(z)) end
return lost
"""
)

# KEYS[1] scheduled, KEYS[2] queue, KEYS[3] notify, KEYS[4] job-key prefix (derived
#   job keys: same slot)
# ARGV[1] limit
# Returns how many Scheduled jobs became Queued (back of the queue, in due order)
PROMOTE = (
    PRELUDE
    + """
local now_s, now_ms = clock()
return promote(KEYS[1], KEYS[2], KEYS[3], KEYS[4], now_s, now_ms, ARGV[1])
"""
)

# KEYS[1] leases, KEYS[2] queue, KEYS[3] notify, KEYS[4] stats, KEYS[5] job-key prefix
#   (derived job keys: same slot)
# ARGV[1] retention ms, ARGV[2] limit
# Returns {leases scanned, recovered id...}: leases that expired by Redis' clock
RECOVER_EXPIRED = (
    PRELUDE
    + """
local now_s, now_ms = clock()
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, ARGV[2])
local out = recover(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], members, nil, ARGV[1],
                    now_s)
table.insert(out, 1, #members)
return out
"""
)

# KEYS[1] leases, KEYS[2] queue, KEYS[3] notify, KEYS[4] stats, KEYS[5] job-key prefix
#   (derived job keys: same slot)
# ARGV[1] retention ms, ARGV[2] worker id
# Returns the recovered ids: every lease of the name whose job's worker is ARGV[2]
RECOVER_WORKER = (
    PRELUDE
    + """
local now_s = clock()
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
return recover(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], members, ARGV[2], ARGV[1],
               now_s)
"""
)

# KEYS[1] leases, KEYS[2] job-key prefix (derived job keys: same slot)
# Returns the distinct worker ids that hold leases of this name (read only)
LEASE_HOLDERS = f"""
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local seen, out = {{}}, {{}}
for i = 1, #members do
  local id = string.match(members[i], '^([^:]+):')
  local w = redis.call('HGET', KEYS[2] .. id, '{k.F_WORKER}')
  if w and w ~= '' and not seen[w] then
    seen[w] = true
    out[#out + 1] = w
  end
end
return out
"""

ALL = {
    "CREATE": CREATE,
    "CLAIM": CLAIM,
    "COMPLETE": COMPLETE,
    "FAIL": FAIL,
    "RELEASE": RELEASE,
    "CANCEL": CANCEL,
    "PROGRESS": PROGRESS,
    "HEARTBEAT": HEARTBEAT,
    "PROMOTE": PROMOTE,
    "RECOVER_EXPIRED": RECOVER_EXPIRED,
    "RECOVER_WORKER": RECOVER_WORKER,
    "LEASE_HOLDERS": LEASE_HOLDERS,
}
"""Every script by name (the store registers each once)."""
