package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/srs-offload/srs-offload/logging"
	"github.com/srs-offload/srs-offload/redact"
	"github.com/srs-offload/srs-offload/settings"
)

// configFlag registers -c and --config on a subcommand's flag set.
func configFlag(fs *flag.FlagSet) *string {
	p := fs.String("c", "", "config file (YAML)")
	fs.StringVar(p, "config", "", "config file (YAML)")
	return p
}

// load reads a config and compiles it into a plan (see compile); an empty path means the
// defaults. Problems are printed one per line.
func load(path string, stderr io.Writer) (*plan, error) {
	cfg, err := readConfig(path, stderr)
	if err != nil {
		return nil, err
	}
	return compilePrinted(cfg, path, stderr)
}

// compilePrinted is compile, printing its problems one per line.
func compilePrinted(cfg settings.Config, path string, stderr io.Writer) (*plan, error) {
	p, err := compile(cfg)
	if err != nil {
		printProblems(stderr, path, err)
		return nil, err
	}
	return p, nil
}

// readConfig reads a config without validating it.
func readConfig(path string, stderr io.Writer) (settings.Config, error) {
	if path == "" {
		return settings.Default(), nil
	}
	cfg, err := settings.Load(path)
	if err != nil {
		printProblems(stderr, path, err)
	}
	return cfg, err
}

func printProblems(w io.Writer, path string, err error) {
	if path == "" {
		path = "(defaults)"
	}
	if probs, ok := settings.AsErrors(err); ok {
		for _, p := range probs {
			fmt.Fprintf(w, "%s: %s\n", path, redact.Text(p.Error()))
		}
		return
	}
	fmt.Fprintf(w, "%s: %v\n", path, redact.Error(err))
}

// newLogger is the process's logger (log.format, log.level), installed as the one every library's
// log lines go through (see package logging).
func newLogger(c settings.Log) *slog.Logger {
	l := logging.New(os.Stderr, c.Format, c.Level)
	logging.Install(l)
	return l
}
