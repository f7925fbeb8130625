-- The playlist ledger of one stream. All keys share one hash tag.
-- KEYS: 1 st (HASH state), 2 q (ZSET pending items by hook order), 3 e (HASH id -> item JSON),
--       4 w (LIST live window), 5 dn (ZSET consumed ids by time), 6 vs (HASH session -> info JSON)
-- ARGV: 1 op (announce|complete|lost|advance), 2 id, 3 kind (s|m|i), 4 client, 5 seq, 6 key,
--       7 duration, 8 key tag, 9 now (ms), 10 window (s), 11 stall (ms), 12 how long consumed ids are kept (ms),
--       13 session info JSON, 14 playlist key, 15 key prefix (for the per-session VoD sets)
-- Returns {version, changed (0|1), session, new session (0|1)}.
--
-- State fields (st): ord (hook-order counter), asess/acl/aseq (the announcing side: session
-- number, client, last seq), sess/last/map/disc (the live side: session, last seq, EXT-X-MAP
-- URI, discontinuity pending), next (media sequence of the next live entry), wdur (duration in
-- the window), tdur (target duration, never shrinks), dseq (discontinuity sequence), ver (live
-- version), fmp4, key (playlist key), if:<session> (items of that session still in flight).

local st, q, e, w, dn, vs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local op, id, kind, client = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local seq, okey, dur, ktag = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7]), ARGV[8]
local now, window, stall, keepdone = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local info, pkey, prefix = ARGV[13], ARGV[14], ARGV[15]

local function num(f, default)
  local v = redis.call('HGET', st, f)
  if v then return tonumber(v) end
  return default
end

local fresh = 0

-- announce returns the item's record, creating it in hook order if it is new; nil if the item
-- was consumed already (a repeated delivery). late: the item is only now learnt of, when it is
-- already stored or lost (its announce at hook time failed): it joins its publisher's session
-- without moving the announcing side, goes into the VoD record only, and is not counted in flight.
local function announce(late)
  local raw = redis.call('HGET', e, id)
  if raw then return cjson.decode(raw) end
  if redis.call('ZSCORE', dn, id) then return nil end
  local ord = redis.call('HINCRBY', st, 'ord', 1)
  if late then
    local s = tonumber(redis.call('HGET', st, 'c:' .. client) or '')
    if s then
      local vo = seq
      if kind == 'i' then vo = -0.5 end
      local it = {st = 'f', k = kind, c = client, q = seq, s = s, a = now, o = ord, vo = vo, skip = 1, late = 1}
      redis.call('HSET', e, id, cjson.encode(it))
      return it
    end
  end
  local asess = num('asess', 0)
  local acl = redis.call('HGET', st, 'acl')
  local aseq = num('aseq', -1)
  -- A new publisher, or seq_no going back (SRS recreated the source), starts a session.
  if asess == 0 or acl ~= client or (kind ~= 'i' and seq < aseq) then
    asess = asess + 1
    aseq = -1
    local si = cjson.decode(info)
    si.start = now
    redis.call('HSET', vs, asess, cjson.encode(si))
    redis.call('HSET', st, 'asess', asess, 'acl', client, 'c:' .. client, asess)
    fresh = 1
  end
  -- Its place in the session's VoD record: segments by seq_no (strictly increasing within a
  -- session), an init segment just before the next segment announced.
  local vo = seq
  if kind == 'i' then vo = aseq + 0.5 end
  if kind ~= 'i' then redis.call('HSET', st, 'aseq', seq) end
  if kind == 'm' or kind == 'i' then redis.call('HSET', st, 'fmp4', 1) end
  redis.call('HSET', st, 'key', pkey)
  local it = {st = 'f', k = kind, c = client, q = seq, s = asess, a = now, o = ord, vo = vo}
  redis.call('HSET', e, id, cjson.encode(it))
  redis.call('ZADD', q, ord, id)
  redis.call('HINCRBY', st, 'if:' .. asess, 1)
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
      if it.st == 'f' then
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

-- settle marks an item verified (with its key) or lost, once.
local function settle(state)
  local it = announce(true)
  if not it then return 0 end -- consumed already: a repeated delivery
  if it.st ~= 'f' then return it.s end
  it.st = state
  if state == 'v' then
    it.u, it.d = okey, dur
    if ktag ~= '' then it.kt = ktag end
    -- The session's VoD record: every verified item, in hook order, whenever it arrives.
    local v = {o = it.o, k = it.k, q = it.q, d = dur, u = okey}
    if it.kt then v.kt = it.kt end
    redis.call('ZADD', prefix .. 'v:' .. it.s, it.vo, cjson.encode(v))
  end
  if it.late ~= 1 then redis.call('HINCRBY', st, 'if:' .. it.s, -1) end
  if it.skip == 1 then
    -- The live playlist moved on without it already.
    redis.call('HDEL', e, id)
    redis.call('ZADD', dn, now, id)
  else
    redis.call('HSET', e, id, cjson.encode(it))
  end
  return it.s
end

local session = 0
if op == 'announce' then
  local it = announce(false)
  if it then session = it.s end
  return {num('ver', 0), 0, session, fresh}
elseif op == 'complete' then
  session = settle('v')
elseif op == 'lost' then
  session = settle('l')
end
local r = advance()
return {r[1], r[2], session, fresh}
