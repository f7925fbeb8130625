package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/rdb"
)

// aclCommands are the Redis commands srs-offload needs, and all that its ACL user gets in
// TestE2ERedisTLSAndACLUser (README, Fleet, lists them): asynq's client, server and inspector
// (their Lua scripts' commands included), our ledger, and the rendezvous.
var aclCommands = []string{
	// connection (go-redis's handshake; select only with redis.db > 0; cluster|slots for a Cluster)
	"+auth", "+hello", "+ping", "+select", "+cluster|slots",
	// scripts and transactions
	"+eval", "+evalsha", "+script|load", "+multi", "+exec",
	// strings and keys
	"+get", "+set", "+setex", "+setnx", "+del", "+exists", "+expire", "+expireat", "+pexpire", "+incr", "+ttl",
	// hashes
	"+hget", "+hmget", "+hset", "+hdel", "+hexists", "+hgetall", "+hincrby", "+hvals",
	// lists
	"+lpush", "+rpush", "+lpop", "+rpoplpush", "+lrange", "+lindex", "+llen", "+lrem",
	// sets
	"+sadd", "+srem", "+smembers", "+sismember",
	// sorted sets
	"+zadd", "+zrem", "+zcard", "+zscore", "+zrange", "+zrevrange", "+zrangebyscore", "+zremrangebyscore", "+zremrangebyrank",
	// asynq: task cancelation, and the inspector's queue metrics
	"+subscribe", "+publish", "+memory|usage", "+info",
}

// aclUser is the ACL rule of srs-offload's user: its commands, its keys (so:* and asynq:*) and
// asynq's cancel channel.
func aclUser(name, password string) []string {
	rule := []string{"--user", name, "on", ">" + password, "resetkeys", "~so:*", "~asynq:*", "resetchannels", "&asynq:*", "-@all"}
	return append(rule, aclCommands...)
}

// TestE2ERedisTLSAndACLUser runs the SRS fixtures end to end (hooks → stored → purged → live and
// VoD playlists) against a redis-server that listens with TLS only, requires a client
// certificate signed by the test's own CA, and lets srs-offload's user run only aclCommands on
// its own keys.
func TestE2ERedisTLSAndACLUser(t *testing.T) {
	pki := redistest.NewPKI(t)
	rds := redistest.StartWith(t, redistest.Options{
		TLS: pki.ClientTLS(), Password: "admin-pw",
		Args: append(pki.ServerArgs(), aclUser("offload", "user-pw")...),
	})
	tmp := t.TempDir()
	root := filepath.Join(tmp, "data", "srs")
	os.MkdirAll(root, 0o755)
	redisYAML := fmt.Sprintf(`redis:
  addr: %s
  username: offload
  password: ${E2E_REDIS_PW}
  tls: {ca_file: %s, cert_file: %s, key_file: %s, server_name: localhost}`, rds.Addr, pki.CAFile, pki.ClientCert, pki.ClientKey)
	t.Setenv("E2E_REDIS_PW", "user-pw")
	s := newStackOn(t, redisYAML, root)

	// check --connect passes, and names redis.tls without the client certificate.
	if out, err := exec.Command(binary(t), "check", "--connect", "-c", s.config).CombinedOutput(); err != nil {
		t.Fatalf("check --connect: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(s.config)
	noCert := filepath.Join(s.dir, "nocert.yaml")
	os.WriteFile(noCert, []byte(strings.Replace(string(b), ", cert_file: "+pki.ClientCert+", key_file: "+pki.ClientKey, "", 1)), 0o644)
	if out, err := exec.Command(binary(t), "check", "--connect", "-c", noCert).CombinedOutput(); err == nil || !strings.Contains(string(out), "redis.tls") {
		t.Fatalf("check --connect without a client certificate: %v, want a redis.tls problem:\n%s", err, out)
	}

	p := s.start("serve")
	r := s.replay(readFixtures(t, "srs-7.0.18-abs-paths.jsonl"), func(f string) string {
		return strings.Replace(f, "/data/srs", root, 1)
	}, "/usr/local/srs")
	if len(r.files) < 10 || len(r.sessions) != 1 || !r.sessions[0].ended {
		t.Fatalf("fixture gave %d files, %d sessions", len(r.files), len(r.sessions))
	}
	s.settle(r.files, 30*time.Second)
	checkPlaylists(t, s3Bucket{s.store}, r, 20*time.Second)
	p.stop(t)

	// Nothing was refused along the way, and the user is really limited.
	ctx := context.Background()
	admin := rds.Client()
	defer admin.Close()
	denied, err := admin.Do(ctx, "ACL", "LOG").Slice()
	if err != nil {
		t.Fatal(err)
	}
	if len(denied) > 0 {
		t.Errorf("ACL LOG: srs-offload's user was refused %d times: %v", len(denied), denied)
	}
	user := redis.NewClient(&redis.Options{Addr: rds.Addr, Username: "offload", Password: "user-pw", TLSConfig: pki.ClientTLS()})
	defer user.Close()
	if err := user.Keys(ctx, "*").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("KEYS as the ACL user: %v, want NOPERM", err)
	}
	if err := user.Set(ctx, "other:key", "x", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("SET other:key as the ACL user: %v, want NOPERM", err)
	}

	// What the user ran, for the README's list.
	stats, err := admin.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var used []string
	for _, l := range strings.Split(stats, "\n") {
		if name, _, ok := strings.Cut(strings.TrimPrefix(l, "cmdstat_"), ":"); ok && strings.HasPrefix(l, "cmdstat_") {
			used = append(used, name)
		}
	}
	slices.Sort(used)
	t.Logf("commands run: %s", strings.Join(used, " "))
}

// TestE2ERedisSentinelFailover streams through a Sentinel set (one master, one replica, three
// sentinels) and SIGKILLs the master mid-stream: the sentinels promote the replica, srs-offload's
// clients (asynq's and ours) follow it, hooks get {"code":0} or the documented 503 (the file is
// spooled and found again), nothing is lost and no live playlist goes back.
func TestE2ERedisSentinelFailover(t *testing.T) {
	ss := redistest.StartSentinel(t)
	root := filepath.Join(t.TempDir(), "hls")
	os.MkdirAll(root, 0o755)
	s := newStackOn(t, fmt.Sprintf("redis:\n  sentinel: {master_name: %s, addrs: [%s]}", ss.MasterName, strings.Join(ss.Addrs(), ", ")), root)
	appendConfig(t, s, fleetConfig)
	if out, err := exec.Command(binary(t), "check", "--connect", "-c", s.config).CombinedOutput(); err != nil {
		t.Fatalf("check --connect: %v\n%s", err, out)
	}
	// check --connect names a master the sentinels do not watch.
	b, _ := os.ReadFile(s.config)
	wrong := filepath.Join(s.dir, "wrong-master.yaml")
	os.WriteFile(wrong, []byte(strings.Replace(string(b), "master_name: "+ss.MasterName, "master_name: nosuch", 1)), 0o644)
	if out, err := exec.Command(binary(t), "check", "--connect", "-c", wrong).CombinedOutput(); err == nil || !strings.Contains(string(out), "redis.sentinel.master_name nosuch") {
		t.Fatalf("check --connect with a wrong master name: %v, want a redis.sentinel.master_name problem:\n%s", err, out)
	}
	p := s.start("serve")
	fr := startStreams(t, s, root, 2, 250*time.Millisecond)
	waitFor(t, 10*time.Second, func() bool { return fr.segments() >= 16 })

	t0 := time.Now()
	ss.Master.Stop() // SIGKILL, mid-stream
	if err := ss.WaitPromoted(ss.Replica.Addr, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("replica promoted %s after the master was killed", time.Since(t0).Round(100*time.Millisecond))
	n := fr.segments()
	waitFor(t, 10*time.Second, func() bool { return fr.segments() >= n+12 })
	fr.finish(20 * time.Second)
	p.stop(t)
}

func waitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clusterConfig: a stream whose on_unpublish is lost ends after 3 s without segments, found by
// the playlist sweep.
const clusterConfig = fleetConfig + "playlist: {idle: 3s}\n"

// TestE2ERedisCluster streams through a Redis Cluster (three masters, three replicas): every
// segment stored and purged, live playlists valid and never going back, each session's VoD
// playlist complete, also for a stream whose on_unpublish is lost (the sweep ends it, though its
// ledger lives on another master than the sweep's index). The streams' ledgers are spread over
// the masters, and every script ran on one slot (Redis refuses a cross-slot script in a Cluster).
func TestE2ERedisCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	root := filepath.Join(t.TempDir(), "hls")
	os.MkdirAll(root, 0o755)
	s := newStackOn(t, fmt.Sprintf("redis:\n  cluster: {addrs: [%s]}", strings.Join(cl.Addrs()[:2], ", ")), root)
	appendConfig(t, s, clusterConfig)
	if out, err := exec.Command(binary(t), "check", "--connect", "-c", s.config).CombinedOutput(); err != nil {
		t.Fatalf("check --connect: %v\n%s", err, out)
	}
	p := s.start("serve")
	fr := startStreams(t, s, root, 4, 250*time.Millisecond, 3)
	masters := map[string]bool{}
	for _, ls := range fr.streams {
		m, err := cl.MasterOf(rdb.StreamKeys("live/" + ls.name + ".m3u8").St)
		if err != nil {
			t.Fatal(err)
		}
		masters[m] = true
	}
	active, _ := cl.MasterOf(rdb.Active)
	t.Logf("stream ledgers on %d masters, the sweep's index on %s", len(masters), active)
	if len(masters) < 2 { // then at least one is on another master than the sweep's index
		t.Fatalf("every stream's ledger on one master (%v): the test would not prove scripts and the sweep across masters", masters)
	}
	waitFor(t, 15*time.Second, func() bool { return fr.segments() >= 40 })
	fr.finish(20 * time.Second)
	p.stop(t)
}

// TestE2ERedisClusterFailover streams through a Redis Cluster and fails over the master that
// holds the worker's queue mid-stream, as an operator does before taking a node down: CLUSTER
// FAILOVER on its replica, then the old master SIGKILLed. Hooks get {"code":0} or the documented
// 503, nothing is lost, and no live playlist goes back.
func TestE2ERedisClusterFailover(t *testing.T) {
	cl := redistest.StartCluster(t)
	root := filepath.Join(t.TempDir(), "hls")
	os.MkdirAll(root, 0o755)
	s := newStackOn(t, fmt.Sprintf("redis:\n  cluster: {addrs: [%s]}", strings.Join(cl.Addrs(), ", ")), root)
	appendConfig(t, s, fleetConfig)
	p := s.start("serve")
	fr := startStreams(t, s, root, 3, 250*time.Millisecond)
	// The master of the HLS queue (asynq tags its keys with the queue name).
	old, err := cl.MasterOf("asynq:{hls@e2e}:pending")
	if err != nil {
		t.Fatal(err)
	}
	var onIt []string
	for _, ls := range fr.streams {
		if m, _ := cl.MasterOf(rdb.StreamKeys("live/" + ls.name + ".m3u8").St); m == old {
			onIt = append(onIt, ls.name)
		}
	}
	t.Logf("failing over %s: the HLS queue and the ledgers of %v", old, onIt)
	waitFor(t, 10*time.Second, func() bool { return fr.segments() >= 18 })

	t0 := time.Now()
	old, replica, err := cl.FailOver("asynq:{hls@e2e}:pending", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cl.Server(old).Stop() // SIGKILL the old master, now a replica
	t.Logf("%s took over in %s; %s killed", replica, time.Since(t0).Round(100*time.Millisecond), old)
	n := fr.segments()
	waitFor(t, 10*time.Second, func() bool { return fr.segments() >= n+9 })

	// Then a master dies unannounced (one holding a stream's ledger, not the one above): its
	// replica is elected after cluster-node-timeout.
	var crashed, crashedKey string
	for _, ls := range fr.streams {
		k := rdb.StreamKeys("live/" + ls.name + ".m3u8").St
		if m, err := cl.MasterOf(k); err == nil && m != replica {
			crashed, crashedKey = m, k
			break
		}
	}
	if crashed == "" {
		t.Fatal("every stream's ledger is on the master failed over above")
	}
	t1 := time.Now()
	cl.Server(crashed).Stop()
	waitFor(t, 15*time.Second, func() bool {
		m, err := cl.MasterOf(crashedKey)
		return err == nil && m != crashed
	})
	okAt := time.Now()
	t.Logf("master %s SIGKILLed: the Cluster was ok again after %s", crashed, okAt.Sub(t1).Round(100*time.Millisecond))
	n = fr.segments()
	waitFor(t, 10*time.Second, func() bool { return fr.segments() >= n+9 })
	fr.finish(20 * time.Second)
	// srs-offload's clients follow the new master at once: no hook sent well after the
	// Cluster was whole again failed (go-redis alone keeps its slot map up to 10 s).
	for _, ls := range fr.streams {
		if d := ls.last503.Sub(okAt); d > 3*time.Second {
			t.Errorf("%s: a hook sent %s after the Cluster was ok again got 503", ls.name, d.Round(100*time.Millisecond))
		}
	}
	p.stop(t)
}

// The README's ACL user lists exactly the commands TestE2ERedisTLSAndACLUser gives its user.
func TestREADMEListsACLCommands(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(b), "ACL SETUSER srs-offload")
	block, _, _ = strings.Cut(block, "```")
	if !ok {
		t.Fatal("README has no ACL SETUSER srs-offload block")
	}
	var listed []string
	for _, f := range strings.Fields(block) {
		if strings.HasPrefix(f, "+") {
			listed = append(listed, f)
		}
	}
	want := slices.Clone(aclCommands)
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("README lists\n  %v\nthe test's ACL user has\n  %v", listed, want)
	}
}
