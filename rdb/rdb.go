// Package rdb owns every Redis key name and Lua script of srs-offload's own (asynq keeps its
// queues under its own "asynq:" names). Key names are part of the upgrade contract: a new
// version reads what the previous one wrote, so every name here is pinned by a test and must not
// change. The playlist ledger (package playlist) and the warm rendezvous (package warm) run their
// commands on these keys and scripts; no other package names a key.
//
// Every key starts with Prefix. A stream's ledger keys share one hash tag ({…}), so its Lua
// scripts touch one Redis Cluster slot.
package rdb

import (
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Prefix starts every key of ours.
const Prefix = "so:"

// Keys shared by all streams.
const (
	// Streams is a HASH "vhost/app/stream" → the stream's playlist key: on_unpublish names only
	// the stream.
	Streams = Prefix + "streams"
	// Folders is a HASH "app/stream" → folder of the stream's m3u8_url, which on_hls_notify's
	// [ts_url] is relative to.
	Folders = Prefix + "folders"
	// Active is a ZSET playlist key → time of its last change (Unix ms), what the sweep visits.
	Active = Prefix + "active"
)

// Probe is a STRING that check --connect and a starting process write, run a script on and
// delete: proof that the Redis user may do what srs-offload does.
const Probe = Prefix + "{check}:probe"

// Purged is a STRING: the JSON fileid.ID of the file at path when it was purged, so a late or
// repeated hook for it is answered.
func Purged(path string) string { return Prefix + "purged:" + path }

// Warm is a STRING: the meeting point of a segment's on_hls_notify and its upload, by the
// segment's expected object key (see Meet).
func Warm(expected string) string { return Prefix + "warm:" + expected }

// Claim is a STRING: the owner (a worker's random token) of the upload of one file on a shared
// volume, by the volume's name and the path relative to it, with a short TTL its owner renews
// (see package claim).
func Claim(volume, rel string) string { return Prefix + "claim:" + volume + ":" + rel }

// ClaimRenew extends a claim's TTL only if its owner still holds it. KEYS: the claim;
// ARGV: owner, TTL in ms. Returns 1 when renewed, 0 when another owns it or it expired.
var ClaimRenew = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)

// ClaimRelease deletes a claim only if its owner still holds it. KEYS: the claim; ARGV: owner.
var ClaimRelease = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Stream is the ledger keys of one stream. All share Tag, made from the playlist's object key.
type Stream struct {
	Tag  string // the hash tag prefix, e.g. "so:{0123456789abcdef}:"
	St   string // HASH: the stream's state (fields in ledger.lua)
	Q    string // ZSET: items not yet consumed by the live playlist, by hook order
	E    string // HASH: item id → JSON record
	W    string // LIST: the live window, one JSON entry per segment
	Dn   string // ZSET: ids of consumed items, by time, so a repeated Complete is a no-op
	Vs   string // HASH: session number → JSON session info
	Lock string // STRING: the publish lock, a random token (see Release)
}

// StreamKeys returns the ledger keys of the stream whose live playlist has this object key.
func StreamKeys(playlistKey string) Stream {
	h := sha1.Sum([]byte(playlistKey))
	tag := Prefix + "{" + hex.EncodeToString(h[:8]) + "}:"
	return Stream{
		Tag: tag, St: tag + "st", Q: tag + "q", E: tag + "e", W: tag + "w", Dn: tag + "dn", Vs: tag + "vs",
		Lock: tag + "lock",
	}
}

// VOD is a ZSET of one session's verified items (JSON), by hook order: its VoD playlist.
// ledger.lua writes it as Tag .. "v:" .. session.
func (s Stream) VOD(session int64) string { return s.Tag + "v:" + strconv.FormatInt(session, 10) }

// LedgerKeys is the KEYS of Ledger, in order.
func (s Stream) LedgerKeys() []string { return []string{s.St, s.Q, s.E, s.W, s.Dn, s.Vs} }

//go:embed ledger.lua
var ledgerLua string

// Ledger is every change to a stream's ledger (announce, complete, lost, advance), atomically.
// KEYS: LedgerKeys. ARGV and results: see ledger.lua.
var Ledger = redis.NewScript(ledgerLua)

// Publish takes and lets go of a stream's publish lock. It takes the lock when ARGV[2] is ""
// (SET NX), unless the live playlist last went up less than ARGV[5] ms ago (ARGV[4] is now, in
// ms): then it answers "wait:<ms>" and the caller publishes after that. After an upload it lets go
// only if the version just uploaded is still the newest, and otherwise keeps the lock so its
// holder uploads again (ARGV[5] is 0), or lets go and answers 2 so the caller publishes again once
// the interval has passed (ARGV[5] > 0): a change made while an upload was in flight is therefore
// always published, in order. Whenever the caller holds the lock afterwards it gets the stream's
// state and live window to upload, so one round trip both decides and reads.
// A lock that still holds ARGV[6], the token of a publish of the caller's that is over, is taken
// as free: its release was lost (a Redis failover that did not replicate the DEL), and waiting
// for it to expire would freeze the live playlist for the lock's TTL.
// KEYS: Lock, St, W. ARGV: token, version uploaded ("": take the lock), lock ttl (ms), now (ms),
// interval (ms), the caller's last finished token ("" none).
// Returns -1 (another holder, or not the holder), 1 (released, or nothing newer to upload), 2
// (released, a newer version waits for the interval), "wait:<ms>", or {state as HGETALL's flat
// list, window} (held: upload this).
var Publish = redis.NewScript(`
local interval = tonumber(ARGV[5])
if ARGV[2] == '' then
  local ver = tonumber(redis.call('HGET', KEYS[2], 'ver') or '0')
  local pub = tonumber(redis.call('HGET', KEYS[2], 'pub') or '0')
  if ver <= pub then return 1 end
  if interval > 0 then
    local left = tonumber(redis.call('HGET', KEYS[2], 'pt') or '0') + interval - tonumber(ARGV[4])
    if left > 0 then return 'wait:' .. left end
  end
  if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[3]) then
    if ARGV[6] == '' or redis.call('GET', KEYS[1]) ~= ARGV[6] then return -1 end
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  end
else
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
  local ver = tonumber(redis.call('HGET', KEYS[2], 'ver') or '0')
  if ver <= tonumber(ARGV[2]) or interval > 0 then
    redis.call('DEL', KEYS[1])
    redis.call('HSET', KEYS[2], 'pub', ARGV[2], 'pt', ARGV[4])
    if ver <= tonumber(ARGV[2]) then return 1 end
    return 2
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {redis.call('HGETALL', KEYS[2]), redis.call('LRANGE', KEYS[3], 0, -1)}`)

// Unlock deletes a lock only if it still holds this token. KEYS: lock. ARGV: token.
var Unlock = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end`)

// EndSession marks a session ended, lets its records expire, and (endLive) marks the live
// playlist ended when no newer session has begun. Returns 1 when the live playlist changed.
// KEYS: St, Vs, VOD(session). ARGV: session, info JSON, retain ms, endLive (0|1).
var EndSession = redis.NewScript(`
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
if ARGV[4] == '1' and tonumber(redis.call('HGET', KEYS[1], 'asess') or '0') == tonumber(ARGV[1])
   and redis.call('HGET', KEYS[1], 'ended') ~= '1' and tonumber(redis.call('HGET', KEYS[1], 'next') or '0') > 0 then
  redis.call('HSET', KEYS[1], 'ended', 1)
  redis.call('HINCRBY', KEYS[1], 'ver', 1)
  return 1
end
return 0`)

// Meet is one side arriving at a Warm point. KEYS: Warm(expected). ARGV: 1 this side's mark ("n"
// for the notify, "s:<actual key>" for the stored segment), 2 wait ms. Returns the other side's
// mark when it was there (and clears the point), else "" after leaving this side's mark.
var Meet = redis.NewScript(`
local other = redis.call('GET', KEYS[1])
local mine = ARGV[1]
if other and string.sub(other, 1, 1) ~= string.sub(mine, 1, 1) then
  redis.call('DEL', KEYS[1])
  return other
end
redis.call('SET', KEYS[1], mine, 'PX', ARGV[2])
return ''`)

// Collect is Meet for a notify that leaves no mark. KEYS: Warm(expected). Returns the stored
// side's mark when it is there (and clears the point), else "".
var Collect = redis.NewScript(`
local other = redis.call('GET', KEYS[1])
if other and string.sub(other, 1, 2) == 's:' then
  redis.call('DEL', KEYS[1])
  return other
end
return ''`)

// Records a process publishes about its node for `srs-offload status`, each with a TTL so that a
// process that is gone stops being shown. They are not part of the ledger.

// Disk is a STRING: the JSON disk backlog (spool files and bytes) of one node, rewritten by its
// processes every few seconds (package progress).
func Disk(node string) string { return Prefix + "disk:" + node }

// DiskMatch is the SCAN pattern of every node's Disk record.
const DiskMatch = Prefix + "disk:*"

// Progress is a STRING: the JSON progress of one upload in flight (task id) on a node, rewritten
// every second while it runs (package progress).
func Progress(node, task string) string { return Prefix + "progress:" + node + ":" + task }

// ProgressMatch is the SCAN pattern of every Progress record.
const ProgressMatch = Prefix + "progress:*"
