package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/inventory"
	"github.com/srs-offload/srs-offload/playlist"
)

// runLs prints what is stored per stream (package inventory).
func runLs(args []string) int {
	fs := flag.NewFlagSet("ls", flag.ContinueOnError)
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, ok := parseArgs(fs, args)
	if !ok {
		return 2
	}
	if len(pos) > 1 {
		fmt.Fprintln(os.Stderr, "ls: want at most one app or app/stream")
		return 2
	}
	var app, stream string
	if len(pos) == 1 {
		app, stream, _ = strings.Cut(strings.Trim(pos[0], "/"), "/")
	}
	p, err := load(*path, os.Stderr)
	if err != nil {
		return 2
	}
	defer p.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	up, err := openStorage(ctx, p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "srs-offload ls:", err)
		return 1
	}
	inv := &inventory.Inventory{Bucket: up, DVRKey: p.keys.DVR, VODKey: p.vodKey}
	if p.cfg.Playlist.Enabled {
		cfg := p.cfg
		rc := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr, Password: cfg.Redis.Password, DB: cfg.Redis.DB})
		defer rc.Close()
		inv.Ledger = playlist.New(rc, playlist.Settings{})
	}
	streams, err := inv.List(ctx, app, stream)
	if err != nil {
		fmt.Fprintln(os.Stderr, "srs-offload ls:", err)
		return 1
	}
	if *asJSON {
		if streams == nil {
			streams = []inventory.Stream{}
		}
		return printJSON(streams)
	}
	if len(streams) == 0 {
		fmt.Println("nothing stored for", cmpOr(pos, "any stream"))
		return 0
	}
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	}
	for i, st := range streams {
		if i > 0 {
			fmt.Println()
		}
		fmt.Printf("%s/%s", st.App, st.Stream)
		if st.Playlist != "" {
			fmt.Printf("  (live playlist %s)", st.Playlist)
		}
		fmt.Println()
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		if len(st.Sessions) > 0 {
			fmt.Fprintln(tw, "  SESSION\tSTART\tEND\tSEGMENTS\tDURATION\tBYTES\tVOD")
			for _, s := range st.Sessions {
				segs := fmt.Sprint(s.Segments)
				if s.Missing > 0 {
					segs += fmt.Sprintf(" (%d missing)", s.Missing)
				}
				vod := s.VOD
				if vod != "" && !s.VODStored {
					vod += " (not stored)"
				}
				if !s.Ended {
					vod += " (live)"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, at(s.Start), at(s.End), segs,
					(time.Duration(s.Duration * float64(time.Second))).Round(time.Millisecond), s.Bytes, vod)
			}
		}
		if len(st.DVR) > 0 {
			fmt.Fprintln(tw, "  RECORDING\tTIME\tBYTES")
			for _, f := range st.DVR {
				fmt.Fprintf(tw, "  %s\t%s\t%d\n", f.Key, at(f.Time), f.Size)
			}
		}
		tw.Flush()
	}
	return 0
}

func cmpOr(pos []string, def string) string {
	if len(pos) > 0 {
		return pos[0]
	}
	return def
}
