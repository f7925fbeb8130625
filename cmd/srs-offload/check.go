package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/settings"
	"github.com/srs-offload/srs-offload/spool"
	"github.com/srs-offload/srs-offload/srsconf"
)

// runCheck validates a settings. With --connect it also reaches Redis and the bucket; with --srs it
// audits SRS's config against it.
func runCheck(args []string) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	path := configFlag(fs)
	connect := fs.Bool("connect", false, "also connect to Redis and the bucket")
	srsConf := fs.String("srs", "", "SRS's config file, to audit against this one (hls, dvr and http_hooks of every vhost)")
	srsCwd := fs.String("srs-cwd", "", "SRS's working folder, for its relative paths (default: the folder above conf/, e.g. /usr/local/srs)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path, os.Stderr)
	if err != nil {
		return 2
	}
	bad := false
	if *srsConf != "" {
		findings, err := auditSRS(cfg, *srsConf, *srsCwd)
		if err != nil {
			fmt.Fprintf(os.Stderr, "--srs %s: %v\n", *srsConf, err)
			return 2
		}
		for _, f := range findings {
			fmt.Fprintln(os.Stderr, f)
			bad = bad || f.Error
		}
	}
	if *connect {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := pingRedis(cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			bad = true
		}
		if _, err := openStorage(ctx, cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			bad = true
		}
	}
	if bad {
		return 2
	}
	fmt.Println("config ok")
	return 0
}

func auditSRS(cfg settings.Config, file, cwd string) ([]srsconf.Finding, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	conf, err := srsconf.Parse(raw)
	if err != nil {
		return nil, err
	}
	if cwd == "" {
		abs, err := filepath.Abs(file)
		if err != nil {
			return nil, err
		}
		cwd = filepath.Dir(abs)
		if filepath.Base(cwd) == "conf" {
			cwd = filepath.Dir(cwd)
		}
	}
	rs, err := roots.New(cfg.Roots)
	if err != nil {
		return nil, err
	}
	o := srsconf.Offload{Roots: rs, Reconcile: cfg.Reconcile.Enabled,
		HLSTemplates: cfg.Reconcile.HLSTSFile, DVRTemplates: cfg.Reconcile.DVRPath}
	if cfg.Spool.Enabled {
		sp, err := spool.New(rs, cfg.Spool.Dir)
		if err != nil {
			return nil, err
		}
		if err := sp.Probe(); err != nil {
			fmt.Fprintf(os.Stderr, "spool.dir: %v\n", err)
		} else {
			o.Spool = true
		}
	}
	return srsconf.Audit(conf, cwd, o), nil
}
