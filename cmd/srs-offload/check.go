package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/redact"
	"github.com/srs-offload/srs-offload/settings"
	"github.com/srs-offload/srs-offload/srsconf"
)

// runCheck validates a config and runs the same build as serve on it (constructing every part,
// starting none), so a config that passes check starts. With --connect the build also reaches
// Redis and the bucket and probes the spool; with --srs check audits SRS's config against it.
func runCheck(args []string) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	path := configFlag(fs)
	connect := fs.Bool("connect", false, "also connect to Redis and the bucket")
	srsConf := fs.String("srs", "", "SRS's config file, to audit against this one (hls, dvr and http_hooks of every vhost)")
	srsCwd := fs.String("srs-cwd", "", "SRS's working folder, for its relative paths (default: the folder above conf/, e.g. /usr/local/srs)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	p, err := load(*path, os.Stderr)
	if err != nil {
		return 2
	}
	defer p.close()
	cfg := p.cfg
	for _, w := range settings.Warnings(cfg, *path) {
		fmt.Fprintf(os.Stderr, "warning: %s\n", redact.Text(w.Error()))
	}
	bad := false
	if *srsConf != "" {
		findings, err := auditSRS(p, *srsConf, *srsCwd)
		if err != nil {
			fmt.Fprintf(os.Stderr, "--srs %s: %v\n", *srsConf, err)
			return 2
		}
		for _, f := range findings {
			fmt.Fprintln(os.Stderr, f)
			bad = bad || f.Error
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pr, err := build(ctx, p, roles{hooks: true, worker: true}, newLogger(cfg.Log), buildFor{connect: *connect})
	if err != nil {
		fmt.Fprintln(os.Stderr, redact.Error(err))
		bad = true
	} else {
		// What storage gets: provider, addressing, signing, verification, encryption.
		if pr.store != nil {
			for _, line := range pr.store.Summary() {
				fmt.Println(line)
			}
		}
		// --connect proves how uploads are verified: a probe object written, verified, deleted.
		if *connect && pr.store != nil {
			if msg, err := pr.store.Probe(ctx); err != nil {
				fmt.Fprintln(os.Stderr, redact.Error(err))
				bad = true
			} else {
				fmt.Println(msg)
			}
		}
		pr.close()
	}
	if bad {
		return 2
	}
	fmt.Println(scopeText(p))
	fmt.Println("config ok")
	return 0
}

// scopeText explains queue.scope: which queues this process's tasks go to and who takes them.
func scopeText(p *plan) string {
	qs := slices.Sorted(maps.Keys(queue.Queues(p.queueNode())))
	if !p.scope.Shared() {
		return fmt.Sprintf("queue.scope: node: tasks go to %s; only processes with node: %s take them (the files are on this host's disk)",
			strings.Join(qs, ", "), p.cfg.Node)
	}
	spooled := "spool off"
	if p.spool != nil {
		spooled = "this host's spool links in " + filepath.Join(p.spool.Root(p.scope.Mount), p.spool.Host)
	}
	return fmt.Sprintf("queue.scope: %s: %s is the shared volume %q; tasks go to %s, taken by every worker with queue.scope %s whatever its node "+
		"(one owner per file: a Redis claim by the path below the volume; %s)",
		p.cfg.Queue.Scope, p.scope.Mount, p.scope.Volume, strings.Join(qs, ", "), p.cfg.Queue.Scope, spooled)
}

func auditSRS(p *plan, file, cwd string) ([]srsconf.Finding, error) {
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
	cfg := p.cfg
	o := srsconf.Offload{Roots: p.roots, Reconcile: cfg.Reconcile.Enabled,
		HLSTemplates: cfg.Reconcile.HLSTSFile, DVRTemplates: cfg.Reconcile.DVRPath}
	if sp := p.spool; sp != nil {
		if err := sp.Probe(); err != nil {
			fmt.Fprintf(os.Stderr, "spool.dir: %v\n", err)
		} else {
			o.Spool = true
		}
	}
	return srsconf.Audit(conf, cwd, o), nil
}
