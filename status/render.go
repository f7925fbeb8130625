package status

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the report as one indented JSON document.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as tables for a terminal.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }

	p("QUEUES\n")
	if len(r.Queues) == 0 {
		p("  (none)\n")
	} else {
		p("  NODE\tQUEUE\tPENDING\tACTIVE\tSCHEDULED\tRETRY\tARCHIVED\tOLDEST PENDING\n")
		for _, q := range r.Queues {
			name := q.Name
			if q.Paused {
				name += " (paused)"
			}
			p("  %s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", q.Node, name, q.Pending, q.Active, q.Scheduled, q.Retry, q.Archived, age(q.OldestPending))
		}
	}
	p("\nDISK BACKLOG (spool)\n")
	if len(r.Disk) == 0 {
		p("  (no node published one)\n")
	} else {
		p("  NODE\tFILES\tBYTES\tOLDEST\tUPDATED\n")
		for _, d := range r.Disk {
			p("  %s\t%d\t%s\t%s\t%s ago\n", d.Node, d.Files, bytes(float64(d.Bytes)), age(d.Oldest), age(d.Age))
		}
	}
	p("\nUPLOADS IN FLIGHT (above the multipart threshold)\n")
	if len(r.Uploads) == 0 {
		p("  (none)\n")
	} else {
		p("  NODE\tKEY\tDONE\tSIZE\t%%\tRATE\tETA\n")
		for _, u := range r.Uploads {
			pct := 0.0
			if u.Size > 0 {
				pct = 100 * float64(u.Done) / float64(u.Size)
			}
			eta := "?"
			if u.ETA >= 0 {
				eta = age(u.ETA)
			}
			p("  %s\t%s\t%s\t%s\t%.0f%%\t%s/s\t%s\n", u.Node, u.Key, bytes(float64(u.Done)), bytes(float64(u.Size)), pct, bytes(u.Rate), eta)
		}
	}
	p("\nLAST ERRORS\n")
	if len(r.Errors) == 0 {
		p("  (none)\n")
	} else {
		p("  WHEN\tQUEUE\tSTATE\tFILE\tERROR\n")
		for _, e := range r.Errors {
			file := e.Path
			if file == "" {
				file = e.Key
			}
			when := "-"
			if !e.FailedAt.IsZero() {
				when = e.FailedAt.Local().Format(time.DateTime)
			}
			p("  %s\t%s\t%s\t%s\t%s\n", when, e.Queue, e.State, file, oneLine(e.Err))
		}
	}
	p("\nLIVE STREAMS\n")
	if len(r.Streams) == 0 {
		p("  (none)\n")
	} else {
		p("  STREAM\tPLAYLIST\tSESSION\tMEDIA SEQ\tSEGMENTS\tLAST SEGMENT\tIN FLIGHT\tCHANGED\n")
		for _, s := range r.Streams {
			name := s.Name
			if name == "" {
				name = "-"
			}
			if s.Ended {
				name += " (ended)"
			}
			p("  %s\t%s\t%d\t%d\t%d\t%s\t%d\t%s ago\n", name, s.Playlist, s.Session, s.MediaSequence, s.Segments, s.LastSegment,
				s.InFlight, age(r.Time.Sub(s.Changed).Seconds()))
		}
	}
	return tw.Flush()
}

// age prints seconds as 0s, 12s, 3m04s, 2h05m.
func age(s float64) string {
	if s <= 0 || math.IsNaN(s) {
		return "0s"
	}
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// bytes prints a byte count in binary units.
func bytes(n float64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%.0f B", n)
	}
	i := 0
	for n >= unit && i < 4 {
		n /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", n, "KMGT"[i-1])
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
