package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/admin"
	"github.com/srs-offload/srs-offload/hook"
	"github.com/srs-offload/srs-offload/listener"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/reconcile"
	"github.com/srs-offload/srs-offload/redact"
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
		fmt.Fprintf(os.Stderr, "srs-offload %s: %v\n", name, redact.Error(err))
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
	sp, err := openSpool(cfg, rs, log)
	if err != nil {
		return err
	}
	qc := queue.NewClient(redisOpt(cfg), queue.Options{
		Node: cfg.Node, MaxRetry: cfg.Worker.MaxRetry, Timeout: cfg.Worker.Timeout, Dedup: cfg.Worker.Dedup,
		RedisTimeout: cfg.Hooks.EnqueueTimeout,
	})
	defer qc.Close()
	rec, err := newReconciler(cfg, rs, sp, keys, qc, r, log)
	if err != nil {
		return err
	}
	// Take first: every file written while no srs-offload ran is held in the spool before Redis
	// or storage are asked, so SRS's hls_cleanup cannot delete it while they are slow or down.
	if rec != nil {
		t0 := time.Now()
		n, err := rec.TakeAll(ctx)
		if err != nil {
			log.Warn("spool: the take pass at start did not finish; the first scan takes the rest", "err", err)
		}
		log.Info("spool: files on disk held at start", "files", n, "took", time.Since(t0).Round(time.Millisecond))
	}
	// From here until the worker has shut down, the reconciler takes every new file (watcher,
	// scans), also while Redis, storage or the worker's start are slow, and while running uploads
	// finish after the hook listener closed: in those times no hook takes a file, and SRS's
	// cleanup does not wait.
	recCtx, stopRec := context.WithCancel(context.Background())
	defer stopRec()
	if rec != nil {
		go rec.Run(recCtx)
	}
	if err := pingRedis(cfg); err != nil {
		if !r.hooks {
			return err
		}
		// The receiver starts anyway: hooks are answered 503 (the file is held in the spool),
		// and the reconciler enqueues what is on disk once Redis answers.
		log.Warn("redis not reachable at start; hooks get 503 and their files are held in the spool until it answers", "key", "redis.addr", "err", err)
	}
	// The playlist ledger and the warming rendezvous; bounded like the enqueue, since the hook
	// waits for them too.
	t := cfg.Hooks.EnqueueTimeout
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr, Password: cfg.Redis.Password, DB: cfg.Redis.DB,
		DialTimeout: t, ReadTimeout: t, WriteTimeout: t, ContextTimeoutEnabled: true})
	defer rdb.Close()
	ledger := playlist.New(rdb, playlist.Settings{Window: cfg.Playlist.Window, Stall: cfg.Playlist.Stall, Retain: cfg.Playlist.Retain})
	var rendezvous *warm.Rendezvous // CDN warming, when targets are configured
	if len(cfg.Warm.Targets) > 0 {
		rendezvous = warm.NewRendezvous(rdb, cfg.Warm.Wait)
	}

	// Every process serves its metrics on admin.listen, the queues' too (size and latency: the
	// backlog's age); the receiver takes hooks on listen, and nothing else is served there.
	inspector := asynq.NewInspector(redisOpt(cfg))
	defer inspector.Close()
	collector := metrics.NewQueueMetricsCollector(inspector)
	if err := prometheus.Register(collector); err == nil {
		defer prometheus.Unregister(collector)
	}
	var hooks http.Handler
	if r.hooks {
		h, err := newHooks(cfg, rs, keys, qc, &playlist.Receiver{Ledger: ledger, Node: cfg.Node}, rendezvous, sp, rec, log)
		if err != nil {
			return err
		}
		hooks = h // every path: SRS posts to whatever path the operator configured
	}
	var ws *worker.Server
	var store *uploader.Uploader
	if r.worker {
		if ws, store, err = startWorker(ctx, cfg, rs, sp, qc, ledger, rendezvous, log); err != nil {
			return err
		}
	}
	checks := []admin.Check{
		{Name: "redis", Dependency: "redis", Run: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
		{Name: "roots", Run: admin.Writable(rs.Dirs())},
	}
	if store != nil {
		checks = append(checks, admin.Check{Name: "storage", Dependency: "storage", Run: store.CheckBucket})
	}
	adm := admin.New(admin.Options{Token: cfg.Admin.Token, Checks: checks, PProf: cfg.Debug.PProf})
	go adm.Watch(recCtx, 15*time.Second)

	srvs, err := serveListeners(ctx, cfg, r, hooks, adm, log)
	if err != nil {
		if ws != nil {
			ws.Shutdown()
		}
		return err
	}
	if ready != nil {
		ready <- srvs.addr
	}
	if r.hooks {
		log.Info("hook receiver ready", "roots", rs.String(), "node", cfg.Node)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-srvs.errc:
		runErr = err
	}
	log.Info("shutting down")
	// In-flight hooks finish: reading one takes hooks.read_timeout at most, recording it
	// hooks.enqueue_timeout.
	srvs.shutdown(cfg.Hooks.ReadTimeout + cfg.Hooks.EnqueueTimeout + time.Second)
	if ws != nil {
		ws.Shutdown()
	}
	stopRec()
	return runErr
}

// servers are the HTTP servers of a process and their sockets' hand-overs.
type servers struct {
	addr      string // the hook listener's address, else the admin one's
	errc      chan error
	srvs      []*listener.Serving
	handovers []*listener.Handover
}

// serveListeners opens the hook listener (when hooks is set) and the admin listener (when
// admin.listen is set), from systemd, from the process being replaced or bound anew (package
// listener), and serves them.
func serveListeners(ctx context.Context, cfg settings.Config, r roles, hooks http.Handler, adm http.Handler, log *slog.Logger) (*servers, error) {
	group := fmt.Sprintf("hooks=%t,worker=%t", r.hooks, r.worker) // hand-overs only between processes of one kind
	var specs []listener.Spec
	if hooks != nil {
		specs = append(specs, listener.Spec{Name: "hooks", Addr: cfg.Listen, Group: group, ReusePort: true})
	}
	if cfg.Admin.Listen != "" {
		// No SO_REUSEPORT: a second process of another kind on the same admin address is a
		// config mistake, refused at start.
		specs = append(specs, listener.Spec{Name: "admin", Addr: cfg.Admin.Listen, Group: group})
	}
	lns, err := listener.Open(ctx, specs, log)
	if err != nil {
		return nil, err
	}
	s := &servers{errc: make(chan error, len(lns))}
	for _, ln := range lns {
		var srv *http.Server
		var limited net.Listener
		switch ln.Spec.Name {
		case "hooks":
			srv = listener.Server(hooks, listener.Timeouts{Read: cfg.Hooks.ReadTimeout, Idle: cfg.Hooks.IdleTimeout}, log)
			limited = listener.Limit(ln, cfg.Hooks.MaxConns, ln.Spec.Name)
		default:
			srv = listener.Server(adm, listener.Timeouts{Read: 10 * time.Second, Idle: time.Minute}, log)
			limited = listener.Limit(ln, 64, ln.Spec.Name)
		}
		if s.addr == "" {
			s.addr = ln.Addr().String()
		}
		if ln.From != "systemd" { // systemd holds its sockets across restarts itself
			h, err := listener.ServeHandover(ln.Spec, ln.Listener, log)
			if err != nil {
				log.Warn("listener: restarts without systemd may refuse connections", "listener", ln.Spec.Name, "err", err)
			} else {
				s.handovers = append(s.handovers, h)
			}
		}
		sv := listener.Serve(srv, limited)
		s.srvs = append(s.srvs, sv)
		go func() {
			if err, ok := <-sv.Err(); ok {
				s.errc <- fmt.Errorf("%s listener %s: %w", ln.Spec.Name, ln.Addr(), err)
			}
		}()
		log.Info("listening", "listener", ln.Spec.Name, "addr", ln.Addr().String(), "socket", ln.From)
	}
	return s, nil
}

// shutdown stops offering the sockets to a successor, stops accepting and waits up to wait for
// the requests in flight (see listener.Serving.Stop).
func (s *servers) shutdown(wait time.Duration) {
	for _, h := range s.handovers {
		h.Close()
	}
	sctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range s.srvs {
		wg.Add(1)
		go func() { defer wg.Done(); srv.Stop(sctx) }()
	}
	wg.Wait()
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

// newReconciler builds the scan and watch of the roots (nil when reconcile.enabled is off). In a
// process without the receiver (a worker) it only holds files in the spool (nil without a spool):
// files written while the hooks process is down are then safe from SRS's cleanup, and that
// process's reconciler enqueues them from the spool once it is back.
func newReconciler(cfg settings.Config, rs *roots.Set, sp *spool.Spool, keys hook.Keys, qc *queue.Client, r roles, log *slog.Logger) (*reconcile.Reconciler, error) {
	c := cfg.Reconcile
	if !c.Enabled || (!r.hooks && sp == nil) {
		return nil, nil
	}
	layout, err := reconcile.NewLayout(c.HLSTSFile, c.DVRPath)
	if err != nil {
		return nil, fmt.Errorf("reconcile.%w", err)
	}
	rec := &reconcile.Reconciler{
		Roots: rs, Spool: sp, Layout: layout, HLSKey: keys.HLS, DVRKey: keys.DVR,
		MinAge: c.MinAge, Interval: c.Interval, Recheck: max(c.Interval, 30*time.Minute), Watch: c.Watch, Log: log,
	}
	if r.hooks {
		rec.Queue = qc
		if cfg.Playlist.Enabled {
			rec.Placer = &reconcile.Placer{Roots: rs, M3U8: c.HLSM3U8File, PlaylistKey: keys.Playlist, Log: log}
		}
	}
	return rec, nil
}

// newPlaylists builds the worker's playlist manager, which publishes to store.
func newPlaylists(cfg settings.Config, ledger *playlist.Ledger, store playlist.Store, log *slog.Logger) (*playlist.Manager, error) {
	m := &playlist.Manager{
		Ledger: ledger, Store: store,
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
func newHooks(cfg settings.Config, rs *roots.Set, keys hook.Keys, qc *queue.Client, playlists *playlist.Receiver,
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
func startWorker(ctx context.Context, cfg settings.Config, rs *roots.Set, sp *spool.Spool, qc *queue.Client, ledger *playlist.Ledger,
	rendezvous *warm.Rendezvous, log *slog.Logger) (*worker.Server, *uploader.Uploader, error) {
	startCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	up, err := openStorage(startCtx, cfg)
	cancel()
	if err != nil {
		return nil, nil, err
	}
	playlists, err := newPlaylists(cfg, ledger, up, log)
	if err != nil {
		return nil, nil, err
	}
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
			return nil, nil, err
		}
		opts.Warmer = warmer
		off.Warms = &warm.Trigger{Rendezvous: rendezvous, Enqueue: qc.EnqueueWarm, OnUpload: cfg.Warm.OnUpload}
	}
	ws := worker.NewServer(redisOpt(cfg), opts, off)
	if err := ws.Start(); err != nil {
		return nil, nil, fmt.Errorf("worker: %w", err)
	}
	log.Info("worker started", "node", cfg.Node, "queues", queue.Queues(cfg.Node), "concurrency", cfg.Worker.Concurrency,
		"bucket", up.Bucket(), "purge", cfg.Purge.Enabled, "warm_targets", len(cfg.Warm.Targets))
	return ws, up, nil
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
