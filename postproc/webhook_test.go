package postproc_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/postproc"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/webhook"
)

func recording(i int) (queue.Offload, string) {
	key := fmt.Sprintf("live/cam1/rec-%d.flv", i)
	return queue.Offload{Kind: queue.KindDVR, Path: "/srs/" + key, Key: key, App: "live", Stream: "cam1", Vhost: "__defaultVhost__",
		Client: "c-17", File: fileid.ID{Dev: 1, Ino: uint64(100 + i), Size: int64(1000 + i), MtimeNs: 1}}, key
}

// A receiver down for 30 s (3 s with -short) still gets every event once it is back: deliveries
// are retried with backoff through the asynq task, the receiver dedupes by the event id, and
// every signature verifies. A receiver that answers 400 gets each event once, never again, and
// its tasks are archived.
func TestWebhookOutageAndRejection(t *testing.T) {
	outage := 30 * time.Second
	if testing.Short() {
		outage = 3 * time.Second
	}
	good := newReceiver(t, 0)
	bad := newReceiver(t, http.StatusBadRequest)
	tr := &counting{}
	r := newRig(t, func(s *postproc.Stage) {
		s.Webhooks = []webhook.Target{
			{URL: good.URL(), Secret: secret, Timeout: 2 * time.Second},
			{URL: bad.URL(), Secret: secret, Events: []string{"dvr.stored"}, Timeout: 2 * time.Second},
		}
		s.Sender = webhook.Sender{Client: &http.Client{Transport: tr}}
	})
	good.down()
	r.start(t)
	ctx := context.Background()
	const n = 6
	for i := range n {
		p, key := recording(i)
		r.store(t, key, []byte(strings.Repeat("x", 1000+i)))
		if err := r.stage.Recorded(ctx, p, key); err != nil {
			t.Fatal(err)
		}
		// asynq delivers at least once, and a retried upload announces again: one event.
		if err := r.stage.Recorded(ctx, p, key); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	time.Sleep(outage)
	if tr.n() < n {
		t.Fatalf("only %d failed deliveries during a %s outage of %d events: not retried", tr.n(), outage, n)
	}
	good.up()
	deadline := time.After(20 * time.Second)
	for got := 0; got < n; got++ {
		select {
		case <-good.arrived:
		case <-deadline:
			evs, _, _ := good.snapshot()
			t.Fatalf("after the outage only %d of %d events arrived", len(evs), n)
		}
	}
	back := time.Since(t0) - outage
	evs, reqs, badSigs := good.snapshot()
	if badSigs != 0 || len(evs) != n {
		t.Fatalf("%d events, %d bad signatures", len(evs), badSigs)
	}
	t.Logf("outage %s: %d failed deliveries during it, all %d events within %s after, %d requests", outage, tr.n(), n, back.Round(time.Millisecond), reqs)
	for i := range n {
		_, key := recording(i)
		var ev *webhook.Event
		for _, e := range evs {
			if e.Key == key {
				ev = &e
			}
		}
		if ev == nil {
			t.Fatalf("no event for %s", key)
		}
		if ev.Event != "dvr.stored" || ev.Bucket == "" || ev.Size != int64(1000+i) || ev.App != "live" || ev.Stream != "cam1" ||
			ev.Session != "c-17" || !strings.HasPrefix(ev.Checksum, "etag:") || ev.URL != "https://cdn.example.com/"+key {
			t.Errorf("event %+v", *ev)
		}
	}
	// The 400 receiver: each event once, archived, never retried.
	time.Sleep(2 * time.Second)
	_, badReqs, _ := bad.snapshot()
	if badReqs != n {
		t.Errorf("the 400 receiver got %d requests for %d events", badReqs, n)
	}
	in := asynq.NewInspector(asynq.RedisClientOpt{Addr: r.rs.Addr})
	defer in.Close()
	arch, err := in.ListArchivedTasks(queue.Name(queue.KindPost, node))
	if err != nil {
		t.Fatal(err)
	}
	if len(arch) != n {
		t.Errorf("%d archived tasks, want the %d deliveries the 400 receiver refused", len(arch), n)
	}
	for _, a := range arch {
		if a.Retried != 0 || a.Type != queue.TypeWebhook {
			t.Errorf("archived %s retried %d times", a.Type, a.Retried)
		}
	}
}

// A receiver with the wrong secret detects the forgery; one with the right one does not.
func TestWebhookBadSignatureDetected(t *testing.T) {
	rcv := newReceiver(t, 0)
	r := newRig(t, func(s *postproc.Stage) {
		s.Webhooks = []webhook.Target{{URL: rcv.URL(), Secret: []byte("not-the-receivers-secret")}}
	})
	r.start(t)
	p, key := recording(0)
	r.store(t, key, []byte("flv"))
	if err := r.stage.Recorded(context.Background(), p, key); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if evs, _, bad := rcv.snapshot(); bad > 0 {
			if len(evs) != 0 {
				t.Fatalf("%d events accepted with a bad signature", len(evs))
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no delivery with a bad signature arrived")
}

// A receiver that keeps answering 503 gets the event post.max_retry + 1 times, with backoff,
// and then the delivery is archived.
func TestWebhookRetriesThenArchives(t *testing.T) {
	rcv := newReceiver(t, http.StatusServiceUnavailable)
	r := newRig(t, func(s *postproc.Stage) {
		s.Webhooks = []webhook.Target{{URL: rcv.URL(), Secret: secret}}
		s.Tasks.MaxRetry = 3
	})
	r.start(t)
	p, key := recording(0)
	r.store(t, key, []byte("flv"))
	if err := r.stage.Recorded(context.Background(), p, key); err != nil {
		t.Fatal(err)
	}
	in := asynq.NewInspector(asynq.RedisClientOpt{Addr: r.rs.Addr})
	defer in.Close()
	t0 := time.Now()
	var arch []*asynq.TaskInfo
	for time.Since(t0) < 30*time.Second {
		var err error
		if arch, err = in.ListArchivedTasks(queue.Name(queue.KindPost, node)); err != nil {
			t.Fatal(err)
		}
		if len(arch) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, reqs, bad := rcv.snapshot()
	t.Logf("archived after %s and %d deliveries", time.Since(t0).Round(time.Millisecond), reqs)
	if len(arch) != 1 || arch[0].Type != queue.TypeWebhook || arch[0].Retried != 3 || reqs != 4 || bad != 0 {
		t.Fatalf("archived %d tasks (retried %v), %d deliveries, %d bad signatures; want 1 archived after 4 deliveries",
			len(arch), func() []int {
				var n []int
				for _, a := range arch {
					n = append(n, a.Retried)
				}
				return n
			}(), reqs, bad)
	}
	if !strings.Contains(arch[0].LastErr, "503") {
		t.Errorf("last error %q", arch[0].LastErr)
	}
}

// A receiver answering 429 with Retry-After: 3 is not asked again for 3 s (less asynq's
// whole-second scheduling), whatever the shorter backoff.
func TestWebhookHonoursRetryAfter(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		if len(times) == 1 {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	r := newRig(t, func(s *postproc.Stage) { s.Webhooks = []webhook.Target{{URL: srv.URL, Secret: secret}} })
	r.opts.RetryMax = 10 * time.Second // the backoff of a first retry stays at 100..200 ms
	r.start(t)
	p, key := recording(0)
	r.store(t, key, []byte("flv"))
	if err := r.stage.Recorded(context.Background(), p, key); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(times)
		mu.Unlock()
		if n >= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("%d deliveries", len(times))
	}
	gap := times[1].Sub(times[0])
	t.Logf("second delivery %s after the 429", gap.Round(time.Millisecond))
	if gap < 2*time.Second || gap > 5*time.Second {
		t.Errorf("asked again after %s despite Retry-After: 3", gap)
	}
}

// A webhook's URL (which may carry a token) is not in the tasks in Redis.
func TestWebhookURLNotInRedis(t *testing.T) {
	rcv := newReceiver(t, 0)
	u := rcv.URL() + "?token=s3cr3t-in-url"
	r := newRig(t, func(s *postproc.Stage) { s.Webhooks = []webhook.Target{{URL: u, Secret: secret}} })
	in := asynq.NewInspector(asynq.RedisClientOpt{Addr: r.rs.Addr})
	defer in.Close()
	p, key := recording(0)
	r.store(t, key, []byte("flv"))
	if err := r.stage.Recorded(context.Background(), p, key); err != nil {
		t.Fatal(err)
	}
	r.start(t)
	<-rcv.arrived
	time.Sleep(200 * time.Millisecond)
	done, err := in.ListCompletedTasks(queue.Name(queue.KindPost, node))
	if err != nil || len(done) != 2 {
		t.Fatalf("%d completed tasks: %v", len(done), err)
	}
	for _, ti := range done {
		if strings.Contains(string(ti.Payload), "s3cr3t") || strings.Contains(string(ti.Payload), rcv.addr) {
			t.Errorf("task %s holds the webhook's URL: %s", ti.Type, ti.Payload)
		}
	}
}
