package worker_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/claim"
	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
	"github.com/srs-offload/srs-offload/worker"
)

// putCounter counts the PUT requests (whole objects and parts) per object key that reach the S3
// server, and holds each for a while, so that two workers racing one file overlap in storage.
type putCounter struct {
	mu   sync.Mutex
	puts map[string]int
	hold time.Duration
}

func (c *putCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			// Path style: /<bucket>/<key>.
			parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)
			if len(parts) == 2 && parts[1] != "" {
				c.mu.Lock()
				c.puts[parts[1]]++
				c.mu.Unlock()
				time.Sleep(c.hold)
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (c *putCounter) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.puts[key]
}

// Two workers of two hosts mounting one shared volume get the same file's task at once (asynq
// delivering a task again while its first delivery runs, or a follow-up of the same file): the
// file's claim makes one of them the owner. The file is uploaded once; the other waits
// (queue.ErrNotYet), then finds it stored by the same task id and succeeds too; the file and
// every host's spooled link of it are gone, and only after the verified upload. The hook's host
// saw another device number than the workers (NFS clients do): the file is still the task's.
func TestSharedVolumeRaceOneUpload(t *testing.T) {
	rds := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rds.Addr})
	t.Cleanup(func() { rdb.Close() })
	pc := &putCounter{puts: map[string]int{}, hold: 300 * time.Millisecond}
	up := s3test.Fake(t, pc.wrap).Uploader(t, nil)
	vol, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const volume = "vol"

	// host builds one host's view of the volume: its roots, its spool folder of its own.
	host := func(node string) (*roots.Set, *spool.Spool) {
		rs, err := roots.New([]string{vol})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.Close() })
		sp, err := spool.New(rs, spoolDir)
		if err != nil {
			t.Fatal(err)
		}
		if err := sp.Shared(node); err != nil {
			t.Fatal(err)
		}
		return rs, sp
	}
	for round := range 5 {
		pc.mu.Lock()
		clear(pc.puts)
		pc.mu.Unlock()
		rel := filepath.Join("live", "cam1", "seg-"+string(rune('0'+round))+".ts")
		path := filepath.Join(vol, rel)
		data := make([]byte, 200_000+round)
		rng := rand.New(rand.NewPCG(uint64(round), 1))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		// The SRS host srs1 hooked the file and spooled it; the reconciler of srs2 took it too.
		_, sp1 := host("srs1")
		_, sp2 := host("srs2")
		for _, sp := range []*spool.Spool{sp1, sp2} {
			if _, err := sp.Take(path, fi); err != nil {
				t.Fatal(err)
			}
		}
		p := queue.Offload{Kind: queue.KindHLS, Path: path, Key: filepath.ToSlash(rel), File: fileid.Of(fi), Hooked: time.Now()}
		// The SRS host is an NFS client of its own: it saw another device number than the workers.
		p.File.Dev += 1000
		queue.Scope{Volume: volume, Mount: vol, Node: "srs1"}.Stamp(&p)

		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, name := range []string{"w1", "w2"} {
			rs, sp := host(name)
			off := &worker.Offloader{Roots: rs, Store: up, Spool: sp, Purge: true, Log: testLogger(t),
				Scope: queue.Scope{Volume: volume, Mount: vol, Node: name}, Claims: &claim.Claims{RDB: rdb, Volume: volume}}
			task := p
			if i == 1 {
				task.Followup = true // the same file, the same TaskID, another delivery
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				deadline := time.Now().Add(20 * time.Second)
				for {
					err := off.Offload(context.Background(), task)
					if !errors.Is(err, queue.ErrNotYet) || time.Now().After(deadline) {
						errs[i] = err
						return
					}
					time.Sleep(50 * time.Millisecond) // asynq retries ErrNotYet a second later
				}
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: worker %d: %v", round, i+1, err)
			}
		}
		if n := pc.count(filepath.ToSlash(rel)); n != 1 {
			t.Fatalf("round %d: %d PUTs of %s, want exactly 1 (two workers uploaded one file)", round, n, rel)
		}
		got, err := up.Get(context.Background(), filepath.ToSlash(rel))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round %d: stored object: %d bytes, err %v; want the file's %d bytes", round, len(got), err, len(data))
		}
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("round %d: the verified file was not purged: %v", round, err)
		}
		var left []string
		filepath.WalkDir(filepath.Join(vol, spoolDir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				left = append(left, p)
			}
			return nil
		})
		if len(left) > 0 {
			t.Fatalf("round %d: spooled links left after the purge: %v", round, left)
		}
		if n, _ := rdb.Exists(context.Background(), "so:claim:"+volume+":"+rel).Result(); n != 0 {
			t.Fatalf("round %d: the claim of %s was not released", round, rel)
		}
	}
}
