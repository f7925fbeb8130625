package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/srs-offload/srs-offload/queue"
)

// The harness's own hook receivers for B1: the log-only baseline, and the bound contenders that
// do only what any receiver must do to record a hook durably before it answers (parse the JSON,
// one asynq enqueue in the same Redis; optionally one small Lua script first, the price of the
// playlist ledger's announce). They show how far a durable receiver can get on this machine.

// hookReq is the part of SRS's on_hls body the harness's receivers read.
type hookReq struct {
	Action   string          `json:"action"`
	ClientID json.RawMessage `json:"client_id"`
	App      string          `json:"app"`
	Stream   string          `json:"stream"`
	Cwd      string          `json:"cwd"`
	File     string          `json:"file"`
	URL      string          `json:"url"`
	M3U8URL  string          `json:"m3u8_url"`
	SeqNo    int64           `json:"seq_no"`
	Duration float64         `json:"duration"`
}

// receiver is a hook receiver in the harness process.
type receiver struct {
	url   string
	srv   *http.Server
	close func()
}

// startReceiver serves on_hls with handle: the body is parsed, handle's error answers 500.
func startReceiver(handle func(ctx context.Context, req *hookReq) error, closeFn func()) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		closeFn()
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		var req hookReq
		if err == nil {
			err = json.Unmarshal(b, &req)
		}
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"code":400}`)
			return
		}
		if err := handle(r.Context(), &req); err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"code":500}`)
			return
		}
		io.WriteString(w, `{"code":0}`)
	})
	rc := &receiver{url: "http://" + ln.Addr().String() + "/api/v1/hls", srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, close: closeFn}
	go rc.srv.Serve(ln)
	return rc, nil
}

func (rc *receiver) Close() {
	rc.srv.Close()
	rc.close()
}

// startLogOnly is the baseline receiver: it parses the hook and logs it.
func startLogOnly(logPath string) (*receiver, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(f, nil))
	return startReceiver(func(_ context.Context, req *hookReq) error {
		log.Info("hook", "action", req.Action, "app", req.App, "stream", req.Stream, "file", req.File, "seq_no", req.SeqNo)
		return nil
	}, func() { f.Close() })
}

// boundQueue is the asynq queue of the bound contenders (srs-offload's is hls@bench).
const boundQueue = "bound@bench"

// announceScript costs what the playlist ledger's announce costs Redis: one EVALSHA of a script
// that writes a few hash fields and sorted-set members per hook.
var announceScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 'sess', '1', 'announced', ARGV[1], 'app', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[4], KEYS[1])
return 1
`)

// startDurable is a bound contender: it parses the hook and enqueues an offload task (the same
// payload type srs-offload enqueues, TaskID and queue options alike) before it answers; with
// ledger, it runs announceScript first.
func startDurable(addr string, ledger bool) (*receiver, error) {
	c := asynq.NewClient(asynq.RedisClientOpt{Addr: addr})
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	return startReceiver(func(ctx context.Context, req *hookReq) error {
		path := filepath.Join(req.Cwd, req.File)
		key := req.App + "/" + strings.TrimPrefix(req.URL, "/")
		if ledger {
			stream := "bound:" + req.App + "/" + req.Stream
			err := announceScript.Run(ctx, rdb, []string{stream, stream + ":items", stream + ":order", "bound:active"},
				req.SeqNo, key, req.App, time.Now().UnixMilli()).Err()
			if err != nil {
				return err
			}
		}
		p := queue.Offload{Kind: queue.KindHLS, Path: path, Key: key, App: req.App, Stream: req.Stream,
			M3U8URL: req.M3U8URL, Client: strings.Trim(string(req.ClientID), `"`),
			Playlist: filepath.Join(req.Cwd, filepath.Dir(req.File), req.Stream+".m3u8"), PlaylistKey: req.App + "/" + req.Stream + ".m3u8",
			SeqNo: req.SeqNo, Duration: req.Duration, Hooked: time.Now()}
		b, err := p.Encode()
		if err != nil {
			return err
		}
		_, err = c.EnqueueContext(ctx, asynq.NewTask(queue.TypeOffload, b), asynq.TaskID(p.QueueID()),
			asynq.Queue(boundQueue), asynq.MaxRetry(25), asynq.Timeout(10*time.Minute), asynq.Retention(time.Hour))
		return err
	}, func() { c.Close(); rdb.Close() })
}

// boundPending checks that Redis holds one pending task of the bound contender per request.
func (e *env) boundPending(want int) error {
	n, err := e.redis.Client.LLen(context.Background(), "asynq:{"+boundQueue+"}:pending").Result()
	if err != nil {
		return err
	}
	if int(n) != want {
		return fmt.Errorf("durable enqueue handler: %d pending tasks in Redis after %d hooks", n, want)
	}
	return nil
}
