package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/hook"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/reconcile"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/settings"
	"github.com/srs-offload/srs-offload/spool"
	"github.com/srs-offload/srs-offload/uploader"
	"github.com/srs-offload/srs-offload/warm"
	"github.com/srs-offload/srs-offload/worker"
)

// roles says which parts a process runs.
type roles struct{ hooks, worker bool }

func runServe(name string, args []string, r roles) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path, os.Stderr)
	if err != nil {
		return 2
	}
	log := newLogger(cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, r, log, nil); err != nil {
		fmt.Fprintf(os.Stderr, "srs-offload %s: %v\n", name, err)
		return 1
	}
	return 0
}

func redisOpt(cfg settings.Config) asynq.RedisClientOpt {
	return asynq.RedisClientOpt{Addr: cfg.Redis.Addr, Password: cfg.Redis.Password, DB: cfg.Redis.DB}
}

func pingRedis(cfg settings.Config) error {
	c := asynq.NewClient(redisOpt(cfg))
	defer c.Close()
	if err := c.Ping(); err != nil {
		return fmt.Errorf("redis.addr %s: not reachable: %w", cfg.Redis.Addr, err)
	}
	return nil
}

func openStorage(ctx context.Context, cfg settings.Config) (*uploader.Uploader, error) {
	s := cfg.Storage
	up, err := uploader.New(ctx, uploader.Config{
		Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, PathStyle: s.PathStyle,
		AccessKey: s.AccessKey, SecretKey: s.SecretKey, Prefix: s.Prefix,
		MultipartThreshold: int64(s.MultipartThreshold), PartSize: int64(s.PartSize),
		PartConcurrency: s.PartConcurrency, MaxConns: 2 * cfg.Worker.Concurrency,
	})
	if err != nil {
		return nil, err
	}
	if err := up.CheckBucket(ctx); err != nil {
		return nil, err
	}
	return up, nil
}

// run wires the parts and blocks until ctx is done, then shuts down: first it stops taking hooks,
// then it lets running uploads finish (or hands them back to the queue). ready, if not nil, gets
// the hook listener's address once it listens.
func run(ctx context.Context, cfg settings.Config, r roles, log *slog.Logger, ready chan<- string) error {
	rs, err := roots.New(cfg.Roots)
	if err != nil {
		return fmt.Errorf("roots: %w", err)
	}
	keys, err := parseKeys(cfg.Keys)
	if err != nil {
		return err
	}
	if err := pingRedis(cfg); err != nil {
		return err
	}
	qc := queue.NewClient(redisOpt(cfg), queue.Options{
		Node: cfg.Node, MaxRetry: cfg.Worker.MaxRetry, Timeout: cfg.Worker.Timeout, Dedup: cfg.Worker.Dedup,
		RedisTimeout: cfg.Hooks.EnqueueTimeout,
	})
	defer qc.Close()
	// The playlist ledger and the warming rendezvous; bounded like the enqueue, since the hook
	// waits for them too.
	t := cfg.Hooks.EnqueueTimeout
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr, Password: cfg.Redis.Password, DB: cfg.Redis.DB,
		DialTimeout: t, ReadTimeout: t, WriteTimeout: t, ContextTimeoutEnabled: true})
	defer rdb.Close()
	playlists, err := newPlaylists(cfg, rdb, log)
	if err != nil {
		return err
	}
	var rendezvous *warm.Rendezvous // CDN warming, when targets are configured
	if len(cfg.Warm.Targets) > 0 {
		rendezvous = warm.NewRendezvous(rdb, cfg.Warm.Wait)
	}

	sp, err := openSpool(cfg, rs, log)
	if err != nil {
		return err
	}

	// Every process serves its metrics on listen, the queues' too (size and latency: the backlog's
	// age); the receiver also takes hooks there.
	inspector := asynq.NewInspector(redisOpt(cfg))
	defer inspector.Close()
	collector := metrics.NewQueueMetricsCollector(inspector)
	if err := prometheus.Register(collector); err == nil {
		defer prometheus.Unregister(collector)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.Handler())
	if cfg.Debug.PProf {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	var rec *reconcile.Reconciler
	if r.hooks {
		if rec, err = newReconciler(cfg, rs, sp, keys, qc, log); err != nil {
			return err
		}
		h, err := newHooks(cfg, rs, keys, qc, playlists, rendezvous, sp, rec, log)
		if err != nil {
			return err
		}
		mux.Handle("/", h)
	}
	var ws *worker.Server
	if r.worker {
		if ws, err = startWorker(ctx, cfg, rs, sp, qc, playlists, rendezvous, log); err != nil {
			return err
		}
	}
	recCtx, stopRec := context.WithCancel(context.Background())
	defer stopRec()
	if rec != nil {
		go rec.Run(recCtx)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		if ws != nil {
			ws.Shutdown()
		}
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if r.hooks {
		log.Info("hook receiver listening", "addr", ln.Addr().String(), "roots", rs.String(), "node", cfg.Node)
	} else {
		log.Info("metrics listening", "addr", ln.Addr().String())
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("hook receiver: %w", err)
		}
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	srv.Shutdown(sctx)
	cancel()
	stopRec()
	if ws != nil {
		ws.Shutdown()
	}
	return runErr
}

// openSpool prepares the spool folder of every root (nil when spool.enabled is off).
func openSpool(cfg settings.Config, rs *roots.Set, log *slog.Logger) (*spool.Spool, error) {
	if !cfg.Spool.Enabled {
		return nil, nil
	}
	sp, err := spool.New(rs, cfg.Spool.Dir)
	if err != nil {
		return nil, fmt.Errorf("spool.dir: %w", err)
	}
	if err := sp.Probe(); err != nil {
		if errors.Is(err, spool.ErrNoLinks) {
			log.Warn("spool: hard links fail in a root; SRS's hls_cleanup/hls_dispose may delete segments before they are uploaded", "err", err)
			return sp, nil
		}
		return nil, fmt.Errorf("spool.dir: %w", err)
	}
	return sp, nil
}

// newReconciler builds the scan and watch of the roots (nil when reconcile.enabled is off).
func newReconciler(cfg settings.Config, rs *roots.Set, sp *spool.Spool, keys hook.Keys, qc *queue.Client, log *slog.Logger) (*reconcile.Reconciler, error) {
	c := cfg.Reconcile
	if !c.Enabled {
		return nil, nil
	}
	layout, err := reconcile.NewLayout(c.HLSTSFile, c.DVRPath)
	if err != nil {
		return nil, fmt.Errorf("reconcile.%w", err)
	}
	r := &reconcile.Reconciler{
		Roots: rs, Spool: sp, Layout: layout, HLSKey: keys.HLS, DVRKey: keys.DVR, Queue: qc,
		MinAge: c.MinAge, Interval: c.Interval, Recheck: max(c.Interval, 30*time.Minute), Watch: c.Watch, Log: log,
	}
	if cfg.Playlist.Enabled {
		r.Placer = &reconcile.Placer{Roots: rs, M3U8: c.HLSM3U8File, PlaylistKey: keys.Playlist, Log: log}
	}
	return r, nil
}

func newPlaylists(cfg settings.Config, rdb redis.UniversalClient, log *slog.Logger) (*playlist.Manager, error) {
	m := &playlist.Manager{
		Ledger:  playlist.New(rdb, playlist.Settings{Window: cfg.Playlist.Window, Stall: cfg.Playlist.Stall, Retain: cfg.Playlist.Retain}),
		EndLive: cfg.Playlist.EndLive, VODWait: cfg.Playlist.VODWait, Node: cfg.Node, Log: log,
	}
	if cfg.Playlist.VODKey != "" {
		t, err := objkey.Parse(cfg.Playlist.VODKey)
		if err != nil {
			return nil, fmt.Errorf("playlist.vod_key: %w", err)
		}
		m.VODKey = &t
	}
	return m, nil
}

// newHooks builds the hook receiver, with on_hls_notify warming when rendezvous is set.
func newHooks(cfg settings.Config, rs *roots.Set, keys hook.Keys, qc *queue.Client, playlists *playlist.Manager,
	rendezvous *warm.Rendezvous, sp *spool.Spool, rec *reconcile.Reconciler, log *slog.Logger) (*hook.Handler, error) {
	in := &hook.Intake{Roots: rs, Keys: keys, Queue: qc, Timeout: cfg.Hooks.EnqueueTimeout, Log: log}
	if cfg.Playlist.Enabled {
		in.Playlists, in.Purged = playlists, playlists
	}
	if sp != nil {
		in.Spool = sp
	}
	if rec != nil {
		in.Unrecorded = rec.Kick
	}
	h := &hook.Handler{Intake: in, Token: cfg.Hooks.Token, Log: log}
	if rendezvous == nil {
		return h, nil
	}
	pattern, err := warm.ParsePattern(cfg.Warm.NotifyPath)
	if err != nil {
		return nil, fmt.Errorf("warm.notify_path: %w", err)
	}
	folder, err := objkey.Parse(cfg.Warm.Folder)
	if err != nil {
		return nil, fmt.Errorf("warm.folder: %w", err)
	}
	h.Notify = &warm.Intake{Pattern: pattern, Folders: playlists, Fallback: folder, HLSKey: keys.HLS,
		Rendezvous: rendezvous, Enqueue: qc.EnqueueWarm}
	return h, nil
}

// startWorker reaches the bucket and starts the asynq server with the offload, session-end and
// (with rendezvous) warm handlers, and the playlist sweep.
func startWorker(ctx context.Context, cfg settings.Config, rs *roots.Set, sp *spool.Spool, qc *queue.Client, playlists *playlist.Manager,
	rendezvous *warm.Rendezvous, log *slog.Logger) (*worker.Server, error) {
	startCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	up, err := openStorage(startCtx, cfg)
	cancel()
	if err != nil {
		return nil, err
	}
	playlists.Store = up
	off := &worker.Offloader{Roots: rs, Store: up, Spool: sp, Purge: cfg.Purge.Enabled, Log: log}
	if cfg.Playlist.Enabled {
		off.Playlists, off.Purges = playlists, playlists
	}
	var lastAbort time.Time
	opts := worker.Options{
		Node: cfg.Node, Concurrency: cfg.Worker.Concurrency,
		RetryBase: cfg.Worker.RetryBase, RetryMax: cfg.Worker.RetryMax,
		ShutdownTimeout: cfg.Worker.ShutdownTimeout, PollInterval: cfg.Worker.PollInterval, Log: log,
		Sweep: func(ctx context.Context) error {
			// Multipart uploads older than the longest attempt belong to killed workers.
			if time.Since(lastAbort) > time.Minute {
				lastAbort = time.Now()
				if n, err := up.AbortStale(ctx, cfg.Worker.Timeout+time.Minute); err != nil {
					log.Warn("could not look for stale multipart uploads", "err", err)
				} else if n > 0 {
					log.Info("aborted multipart uploads left by killed workers", "uploads", n)
				}
			}
			if !cfg.Playlist.Enabled {
				return nil
			}
			return playlists.Sweep(ctx, cfg.Playlist.Idle, func(e queue.End) error { return qc.EnqueueEnd(ctx, e) })
		},
		SweepEvery: min(max(cfg.Playlist.Idle/4, time.Second), 5*time.Second),
	}
	if cfg.Playlist.Enabled {
		opts.Ender = playlists
	}
	if rendezvous != nil {
		targets := make([]warm.Target, len(cfg.Warm.Targets))
		for i, t := range cfg.Warm.Targets {
			targets[i] = t.Target()
		}
		warmer, err := warm.NewWarmer(targets, cfg.Storage.Bucket, cfg.Storage.Prefix, log)
		if err != nil {
			return nil, err
		}
		opts.Warmer = warmer
		off.Warms = &warm.Trigger{Rendezvous: rendezvous, Enqueue: qc.EnqueueWarm, OnUpload: cfg.Warm.OnUpload}
	}
	ws := worker.NewServer(redisOpt(cfg), opts, off)
	if err := ws.Start(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	log.Info("worker started", "node", cfg.Node, "queues", queue.Queues(cfg.Node), "concurrency", cfg.Worker.Concurrency,
		"bucket", up.Bucket(), "purge", cfg.Purge.Enabled, "warm_targets", len(cfg.Warm.Targets))
	return ws, nil
}

func parseKeys(k settings.Keys) (hook.Keys, error) {
	var out hook.Keys
	var err error
	if out.HLS, err = objkey.Parse(k.HLS); err != nil {
		return out, fmt.Errorf("keys.hls: %w", err)
	}
	if out.Playlist, err = objkey.Parse(k.Playlist); err != nil {
		return out, fmt.Errorf("keys.playlist: %w", err)
	}
	if out.DVR, err = objkey.Parse(k.DVR); err != nil {
		return out, fmt.Errorf("keys.dvr: %w", err)
	}
	return out, nil
}
