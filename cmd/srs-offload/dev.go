//go:build dev

package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/template"

	"github.com/srs-offload/srs-offload/embedded"
)

// runDev runs hooks and worker on an embedded Redis and S3: nothing to install.
func runDev(args []string) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	path := configFlag(fs)
	root := fs.String("root", "./data/srs", "folder SRS records into (hls_path, dvr_path); created if missing")
	store := fs.String("store", "./data/s3", "folder where the embedded S3 keeps objects")
	s3addr := fs.String("s3", "127.0.0.1:9000", "address of the embedded S3 server")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	absRoot, err := filepath.Abs(*root)
	if err == nil {
		err = os.MkdirAll(absRoot, 0o755)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "dev: --root %s: %v\n", *root, err)
		return 2
	}

	redis, err := embedded.StartRedis("127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		return 1
	}
	defer redis.Close()

	cfg, err := readConfig(*path, os.Stderr)
	if err != nil {
		return 2
	}
	s3, err := embedded.StartS3(*s3addr, *store, cfg.Storage.Bucket)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		return 1
	}
	defer s3.Close()

	// The embedded parts replace Redis, storage and roots; everything else comes from -c or the defaults.
	cfg.Redis.Addr, cfg.Redis.Password, cfg.Redis.DB = redis.Addr(), "", 0
	cfg.Storage.Endpoint, cfg.Storage.AccessKey, cfg.Storage.SecretKey = s3.Endpoint(), "dev", "dev"
	t := true
	cfg.Storage.PathStyle = &t
	cfg.Roots = []string{absRoot}
	p, err := compilePrinted(cfg, "dev", os.Stderr)
	if err != nil {
		return 2
	}
	defer p.close()
	log := newLogger(cfg.Log)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, p, roles{hooks: true, worker: true}, log, ready) }()
	select {
	case addr := <-ready:
		devBanner.Execute(os.Stdout, map[string]string{
			"Hooks": "http://" + addr, "Root": absRoot, "S3": s3.Endpoint(), "Bucket": cfg.Storage.Bucket,
			"Store": *store, "Redis": redis.Addr(), "Prefix": cfg.Storage.Prefix, "Admin": cfg.Admin.Listen,
			"Monitor": map[bool]string{true: cfg.Admin.Monitor}[cfg.Admin.Listen != "" && cfg.Admin.Monitor != "off"],
		})
	case err := <-done:
		fmt.Fprintln(os.Stderr, "srs-offload dev:", err)
		return 1
	}
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "srs-offload dev:", err)
		return 1
	}
	return 0
}

var devBanner = template.Must(template.New("dev").Parse(`
srs-offload dev: embedded Redis at {{.Redis}} (in memory), embedded S3 at {{.S3}} (bucket {{.Bucket}}, files in {{.Store}})

Paste into your SRS vhost (srs.conf), then publish rtmp://<srs>/live/livestream:

    hls {
        enabled         on;
        hls_path        {{.Root}};
        hls_m3u8_file   [app]/[stream].m3u8;
        hls_ts_file     [app]/[stream]/[2006][01][02]/[timestamp]-[seq].ts;
        hls_cleanup     off;    # srs-offload deletes segments once they are safe in storage
        hls_dispose     0;
    }
    dvr {
        enabled         on;
        dvr_path        {{.Root}}/[app]/[stream]/[2006][01][02]/[timestamp].flv;
        dvr_plan        segment;
        dvr_duration    60;
    }
    http_hooks {
        enabled         on;
        on_hls          {{.Hooks}}/api/v1/hls;
        on_dvr          {{.Hooks}}/api/v1/dvrs;
        on_hls_notify   {{.Hooks}}/api/v1/hls/[app]/[stream]/[ts_url][param];
    }

Play from the local bucket:  {{.S3}}/{{.Bucket}}/{{.Prefix}}live/livestream.m3u8
{{if .Admin}}Metrics:                     http://{{.Admin}}/metrics{{end}}
{{if .Monitor}}Queues (web UI, {{.Monitor}}):  http://{{.Admin}}/monitor/{{end}}
`))
