-- The playlist ledger of one stream. All keys share one hash tag.
-- KEYS: 1 st (HASH state), 2 q (ZSET pending items by hook order), 3 e (HASH id -> item JSON),
--       4 w (LIST live window), 5 dn (ZSET consumed ids by time), 6 vs (HASH session -> info JSON)
-- ARGV: 1 op (announce|complete|lost|advance), 2 id, 3 kind (s|m|i), 4 client, 5 seq, 6 key,
--       7 duration, 8 key tag, 9 now (ms), 10 window (s), 11 stall (ms), 12 how long consumed ids are kept (ms),
--       13 session info JSON, 14 playlist key, 15 key prefix (for the per-session VoD sets),
--       16 the file's mtime (ms; 0 unknown)
-- Returns {version, changed (0|1), session, new session (0|1), ended session got an item (0|1)}.
--
-- State fields (st): ord (hook-order counter), asess/acl/aseq (the announcing side: session
-- number, client, last seq, newest file mtime amt), sess/last/map/disc (the live side: session, last seq, EXT-X-MAP
-- URI, discontinuity pending), next (media sequence of the next live entry), wdur (duration in
-- the window), tdur (target duration, never shrinks), dseq (discontinuity sequence), ver (live
-- version), fmp4, key (playlist key), if:<session> (items of that session still in flight).

local st, q, e, w, dn, vs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local op, id, kind, client = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local seq, okey, dur, ktag = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7]), ARGV[8]
local now, window, stall, keepdone = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local info, pkey, prefix = ARGV[13], ARGV[14], ARGV[15]
local mtime = tonumber(ARGV[16]) or 0

local function num(f, default)
  local v = redis.call('HGET', st, f)
  if v then return tonumber(v) end
  return default
end

local fresh = 0

-- How many places the live playlist keeps for segments missing between two announced ones.
local maxgap = 16

-- sessionAt picks the session of an item without client_id (a file found on disk, no hook): the
-- newest session that had started when the file was written (a session starts at its first hook,
-- just after its first file closed: hence the file's duration and a second of slack), else the
-- oldest; with no mtime, the newest. nil when the stream has no session yet.
local function sessionAt()
  local all = redis.call('HGETALL', vs)
  local best, oldest, newest = nil, nil, nil
  for i = 1, #all, 2 do
    local n = tonumber(all[i])
    local ok, si = pcall(cjson.decode, all[i + 1])
    local start = 0
    if ok and type(si) == 'table' and tonumber(si.start) then start = tonumber(si.start) end
    if mtime > 0 and start <= mtime + dur * 1000 + 1000 and (best == nil or n > best) then best = n end
    if oldest == nil or n < oldest then oldest = n end
    if newest == nil or n > newest then newest = n end
  end
  if mtime <= 0 then return newest end
  return best or oldest
end

-- claim takes the place the live playlist kept in session s for this segment's seq_no (it was
-- missing when a later one was announced), or nil when there is none (any more).
local function claim(s)
  if kind == 'i' then return nil end
  local gid = 'g:' .. s .. ':' .. seq
  local raw = redis.call('HGET', e, gid)
  if not raw then return nil end
  local g = cjson.decode(raw)
  redis.call('HDEL', e, gid)
  redis.call('ZREM', q, gid)
  return {st = 'f', k = kind, c = client, q = seq, s = s, a = g.a, o = g.o, vo = seq}
end

-- announce returns the item's record, creating it if it is new; nil if the item was consumed
-- already (a repeated delivery). late: the item is only now learnt of, when it is already stored
-- or lost (its hook never came, or its announce failed).
-- An item of an existing session never opens a new one: a late or repeated hook of an earlier
-- publisher joins that publisher's session, an older seq_no of the current publisher (its file
-- older than the newest announced) joins the current one, and an item without client_id joins the
-- session that was publishing when its file was written. Such an item takes the place the live
-- playlist kept for it if it still waits (see maxgap); otherwise it goes into the VoD record only.
local function announce(late)
  local raw = redis.call('HGET', e, id)
  if raw then return cjson.decode(raw) end
  if redis.call('ZSCORE', dn, id) then return nil end
  local asess = num('asess', 0)
  local acl = redis.call('HGET', st, 'acl')
  local aseq = num('aseq', -1)
  local amt = num('amt', 0)
  local s = nil
  if client == '' then
    if late then s = sessionAt() end
  elseif acl ~= client then
    s = tonumber(redis.call('HGET', st, 'c:' .. client) or '')
  elseif kind ~= 'i' and seq < aseq and (late or mtime <= amt) then
    s = asess
  end
  if s then
    local it = claim(s)
    if it then
      if late then
        it.late = 1
      else
        redis.call('HINCRBY', st, 'if:' .. s, 1)
      end
      redis.call('HSET', e, id, cjson.encode(it))
      redis.call('ZADD', q, it.o, id)
      return it
    end
    local ord = redis.call('HINCRBY', st, 'ord', 1)
    local vo = seq
    if kind == 'i' then vo = -0.5 end
    it = {st = 'f', k = kind, c = client, q = seq, s = s, a = now, o = ord, vo = vo, skip = 1, late = 1}
    redis.call('HSET', e, id, cjson.encode(it))
    return it
  end
  if asess > 0 and (acl or '') == '' and client ~= '' then
    -- The session was opened by a file found on disk: its publisher's first hook adopts it.
    acl = client
    redis.call('HSET', st, 'acl', client, 'c:' .. client, asess)
  end
  -- A new publisher, or seq_no going back in a newer file (SRS recreated the source), starts a
  -- session.
  if asess == 0 or acl ~= client or (kind ~= 'i' and seq < aseq and mtime > amt) then
    asess = asess + 1
    aseq, amt = -1, 0
    local si = cjson.decode(info)
    si.start = now
    redis.call('HSET', vs, asess, cjson.encode(si))
    redis.call('HSET', st, 'asess', asess, 'acl', client, 'c:' .. client, asess, 'amt', 0)
    fresh = 1
  end
  -- seq_no skipped some: the live playlist keeps their places (up to stall) for their files,
  -- should they be found on disk or their hooks come late.
  if kind ~= 'i' and aseq >= 0 and seq > aseq + 1 and seq - aseq - 1 <= maxgap then
    for g = aseq + 1, seq - 1 do
      local gid = 'g:' .. asess .. ':' .. g
      if redis.call('HEXISTS', e, gid) == 0 then
        local gord = redis.call('HINCRBY', st, 'ord', 1)
        redis.call('HSET', e, gid, cjson.encode({st = 'f', k = kind, q = g, s = asess, a = now, o = gord, vo = g, gap = 1}))
        redis.call('ZADD', q, gord, gid)
      end
    end
  end
  local ord = redis.call('HINCRBY', st, 'ord', 1)
  if mtime > amt then redis.call('HSET', st, 'amt', mtime) end
  -- Its place in the session's VoD record: segments by seq_no (strictly increasing within a
  -- session), an init segment just before the next segment announced.
  local vo = seq
  if kind == 'i' then vo = aseq + 0.5 end
  if kind ~= 'i' and seq > aseq then redis.call('HSET', st, 'aseq', seq) end
  if kind == 'm' or kind == 'i' then redis.call('HSET', st, 'fmp4', 1) end
  redis.call('HSET', st, 'key', pkey)
  local it = {st = 'f', k = kind, c = client, q = seq, s = asess, a = now, o = ord, vo = vo}
  if late then
    -- Only now learnt of (its announce failed at hook time): never counted in flight.
    it.late = 1
  else
    redis.call('HINCRBY', st, 'if:' .. asess, 1)
  end
  redis.call('HSET', e, id, cjson.encode(it))
  redis.call('ZADD', q, ord, id)
  return it
end

-- advance consumes verified (or given-up) items at the head of q into the live window.
local function advance()
  local changed = 0
  local sess, last = num('sess', 0), num('last', -1)
  local map = redis.call('HGET', st, 'map') or ''
  local disc = num('disc', 0)
  local nxt, wdur, tdur, dseq = num('next', 0), num('wdur', 0), num('tdur', 0), num('dseq', 0)
  while true do
    local head = redis.call('ZRANGE', q, 0, 0)
    if #head == 0 then break end
    local hid = head[1]
    local raw = redis.call('HGET', e, hid)
    if not raw then
      -- No record (removed by hand?): drop the id rather than wedge the stream.
      redis.call('ZREM', q, hid)
      disc = 1
    else
    local it = cjson.decode(raw)
    if it.st == 'f' and now - it.a < stall then break end
    if it.s ~= sess then
      -- The first item of a newer session: a publish restarted.
      if nxt > 0 then disc = 1 end
      sess, last, map = it.s, -1, ''
    end
    redis.call('ZREM', q, hid)
    local consumed = true
    if it.st == 'v' and it.k == 'i' then
      map = it.u
    elseif it.st == 'v' and (it.k == 's' or map ~= '') then
      if last >= 0 and it.q ~= last + 1 then disc = 1 end -- a hook SRS never delivered
      local x = 0
      if disc == 1 and nxt > 0 then x = 1 end
      local we = {i = nxt, d = it.d, u = it.u, x = x}
      if it.k == 'm' then we.m = map end
      if it.kt and it.kt ~= '' then we.kt = it.kt end
      redis.call('RPUSH', w, cjson.encode(we))
      nxt = nxt + 1
      wdur = wdur + it.d
      local t = math.ceil(it.d - 0.0005)
      if t > tdur then tdur = t end
      disc, last, changed = 0, it.q, 1
      redis.call('HDEL', st, 'ended')
    else
      -- Lost, stalled, or an fMP4 segment whose init never arrived: the live playlist moves on.
      if it.k ~= 'i' then disc, last = 1, it.q end
      if it.gap == 1 then
        -- The place kept for a segment never announced: it may still come, for the VoD only.
        redis.call('HDEL', e, hid)
        consumed = false
      elseif it.st == 'f' then
        -- Still in flight: keep its record so that, if it arrives, it goes into the VoD playlist.
        it.skip = 1
        redis.call('HSET', e, hid, cjson.encode(it))
        consumed = false
      end
    end
    if consumed then
      redis.call('HDEL', e, hid)
      redis.call('ZADD', dn, now, hid)
    end
    end
  end
  -- Keep at most `window` seconds (and never fewer than one entry).
  while redis.call('LLEN', w) > 1 do
    local first = cjson.decode(redis.call('LINDEX', w, 0))
    if wdur - first.d < window and redis.call('LLEN', w) <= 5000 then break end
    redis.call('LPOP', w)
    wdur = wdur - first.d
    if first.x == 1 then dseq = dseq + 1 end
  end
  redis.call('HSET', st, 'sess', sess, 'last', last, 'map', map, 'disc', disc, 'next', nxt,
    'wdur', wdur, 'tdur', tdur, 'dseq', dseq)
  local ver = num('ver', 0)
  if changed == 1 then ver = redis.call('HINCRBY', st, 'ver', 1) end
  redis.call('ZREMRANGEBYSCORE', dn, '-inf', now - keepdone)
  return {ver, changed}
end

-- settle marks an item verified (with its key) or lost, once. It returns the item's session and
-- whether the item went into the VoD record of a session that has ended already (its VoD
-- playlist must be written again).
local function settle(state)
  local it = announce(true)
  if not it then return 0, 0 end -- consumed already: a repeated delivery
  if it.st ~= 'f' then return it.s, 0 end
  local reopened = 0
  it.st = state
  if state == 'v' then
    it.u, it.d = okey, dur
    if ktag ~= '' then it.kt = ktag end
    -- The session's VoD record: every verified item, in hook order, whenever it arrives.
    local v = {o = it.o, k = it.k, q = it.q, d = dur, u = okey}
    if it.kt then v.kt = it.kt end
    redis.call('ZADD', prefix .. 'v:' .. it.s, it.vo, cjson.encode(v))
    local si = redis.call('HGET', vs, it.s)
    if si then
      local ok, d = pcall(cjson.decode, si)
      if ok and type(d) == 'table' and d.ended == true then reopened = 1 end
    end
  end
  if it.late ~= 1 then redis.call('HINCRBY', st, 'if:' .. it.s, -1) end
  if it.skip == 1 then
    -- The live playlist moved on without it already.
    redis.call('HDEL', e, id)
    redis.call('ZADD', dn, now, id)
  else
    redis.call('HSET', e, id, cjson.encode(it))
  end
  return it.s, reopened
end

local session, reopened = 0, 0
if op == 'announce' then
  local it = announce(false)
  if it then session = it.s end
  return {num('ver', 0), 0, session, fresh, 0}
elseif op == 'complete' then
  session, reopened = settle('v')
elseif op == 'lost' then
  session = settle('l')
end
local r = advance()
return {r[1], r[2], session, fresh, reopened}
