package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/srs-offload/srs-offload/tasks"
)

const tasksUsage = `usage: srs-offload tasks <ls|show|requeue|delete> [-c config.yaml] [flags]

  ls --state archived|retry|pending|scheduled|active|completed [--queue hls|dvr|warm|post] [--node N] [--limit N] [--json]
  show ID [--queue Q] [--node N] [--json]
  requeue ID [--queue Q] [--node N]           put one archived, retry or scheduled task back now
  requeue --all [--state archived|retry|scheduled] [--queue Q] [--node N] [--dry-run]
                                              (--all: this node's queues unless --node names another)
  delete ID [--queue Q] [--node N]            remove a task that is not running (its file stays on disk)
`

// runTasks dispatches the task management subcommands (package tasks).
func runTasks(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, tasksUsage)
		return 2
	}
	switch args[0] {
	case "ls", "list":
		return runTasksLs(args[1:])
	case "show":
		return runTasksOne("show", args[1:])
	case "requeue":
		return runTasksRequeue("tasks requeue", args[1:], false)
	case "delete", "rm":
		return runTasksOne("delete", args[1:])
	case "help", "-h", "--help":
		fmt.Print(tasksUsage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "srs-offload tasks: unknown subcommand %q\n\n%s", args[0], tasksUsage)
	return 2
}

// taskFlags are the flags every tasks subcommand shares.
type taskFlags struct {
	fs     *flag.FlagSet
	config *string
	queue  *string
	node   *string
	json   *bool
}

func newTaskFlags(name, queueDefault string) taskFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	return taskFlags{fs: fs, config: configFlag(fs),
		queue: fs.String("queue", queueDefault, "which queues: hls, dvr, warm, post or all"),
		node:  fs.String("node", "", "which node's queues (default: every node)"),
		json:  fs.Bool("json", false, "print JSON")}
}

func (tf taskFlags) parse(args []string) ([]string, bool) { return parseArgs(tf.fs, args) }

// parseArgs parses flags given before and after the positional arguments (tasks show ID --node
// n), and returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, false
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, true
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// filter turns --queue and --node into a tasks.Filter.
func (tf taskFlags) filter(name string) (tasks.Filter, bool) {
	f := tasks.Filter{Node: *tf.node}
	switch q := *tf.queue; q {
	case "all", "":
	default:
		for _, k := range strings.Split(q, ",") {
			if err := tasks.CheckState(k, tasks.Kinds); err != nil {
				fmt.Fprintf(os.Stderr, "%s: --queue %q: want hls, dvr, warm, post or all\n", name, q)
				return f, false
			}
			f.Kinds = append(f.Kinds, k)
		}
	}
	return f, true
}

// open loads the config (for redis.*) and connects.
func (tf taskFlags) open() (*tasks.Manager, *plan, bool) {
	p, err := load(*tf.config, os.Stderr)
	if err != nil {
		return nil, nil, false
	}
	return tasks.New(p.redisOpt()), p, true
}

func runTasksLs(args []string) int {
	tf := newTaskFlags("tasks ls", "all")
	state := tf.fs.String("state", tasks.StateArchived, "archived, retry, pending, scheduled, active or completed")
	limit := tf.fs.Int("limit", 1000, "list at most this many tasks (0: all)")
	pos, ok := tf.parse(args)
	if !ok {
		return 2
	}
	f, ok := tf.filter("tasks ls")
	if !ok || len(pos) > 0 {
		if len(pos) > 0 {
			fmt.Fprintf(os.Stderr, "tasks ls: unexpected argument %q\n", pos[0])
		}
		return 2
	}
	if err := tasks.CheckState(*state, tasks.ListStates); err != nil {
		fmt.Fprintln(os.Stderr, "tasks ls: --state:", err)
		return 2
	}
	m, p, ok := tf.open()
	if !ok {
		return 2
	}
	defer p.close()
	defer m.Close()
	ts, err := m.List(f, *state, *limit)
	if err != nil {
		fmt.Fprintln(os.Stderr, "srs-offload tasks ls:", err)
		return 1
	}
	if *tf.json {
		if ts == nil {
			ts = []tasks.Task{}
		}
		return printJSON(ts)
	}
	printTaskTable(os.Stdout, ts)
	return 0
}

// runTasksOne is show and delete: one task by id.
func runTasksOne(what string, args []string) int {
	tf := newTaskFlags("tasks "+what, "all")
	pos, ok := tf.parse(args)
	if !ok {
		return 2
	}
	f, ok := tf.filter("tasks " + what)
	if !ok {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintf(os.Stderr, "tasks %s: want one task id (tasks ls lists them)\n", what)
		return 2
	}
	m, p, ok := tf.open()
	if !ok {
		return 2
	}
	defer p.close()
	defer m.Close()
	var t tasks.Task
	var err error
	if what == "show" {
		t, err = m.Show(f, pos[0])
	} else {
		t, err = m.Delete(f, pos[0])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "srs-offload tasks %s: %v\n", what, err)
		return 1
	}
	if *tf.json {
		return printJSON(t)
	}
	if what == "delete" {
		fmt.Printf("deleted %s task %s of %s (%s)\n", t.State, t.ID, t.Queue, describeTask(t))
		return 0
	}
	printTask(os.Stdout, t)
	return 0
}

// runTasksRequeue is `tasks requeue` and the older `requeue` (always --all, this node).
func runTasksRequeue(name string, args []string, all bool) int {
	tf := newTaskFlags(name, "all")
	allFlag := tf.fs.Bool("all", all, "every task in --state of the selected queues")
	state := tf.fs.String("state", tasks.StateArchived, "with --all: archived, retry or scheduled")
	dry := tf.fs.Bool("dry-run", false, "print what would be requeued, change nothing")
	pos, ok := tf.parse(args)
	if !ok {
		return 2
	}
	f, ok := tf.filter(name)
	if !ok {
		return 2
	}
	if *allFlag == (len(pos) == 1) || len(pos) > 1 {
		fmt.Fprintf(os.Stderr, "%s: want one task id, or --all\n", name)
		return 2
	}
	m, p, ok := tf.open()
	if !ok {
		return 2
	}
	defer p.close()
	defer m.Close()
	if !*allFlag {
		t, err := m.Requeue(f, pos[0], *dry)
		if err != nil {
			fmt.Fprintf(os.Stderr, "srs-offload %s: %v\n", name, err)
			return 1
		}
		if *dry {
			fmt.Printf("would requeue %s task %s of %s (%s); dry run: nothing changed\n", t.State, t.ID, t.Queue, describeTask(t))
			return 0
		}
		fmt.Printf("%s task %s of %s back in the queue (%s)\n", t.State, t.ID, t.Queue, describeTask(t))
		return 0
	}
	if f.Node == "" {
		f.Node = p.queueNode() // --all acts on this node's queues (or its shared volume's) unless told otherwise
	}
	got, would, err := m.RequeueAll(f, *state, *dry)
	if err != nil {
		fmt.Fprintf(os.Stderr, "srs-offload %s: %v\n", name, err)
		return 1
	}
	names := make([]string, 0, len(got))
	for q := range got {
		names = append(names, q)
	}
	sort.Strings(names)
	if len(names) == 0 && !*tf.json {
		fmt.Printf("no queue of node %s exists: nothing to requeue\n", f.Node)
	}
	if *dry {
		if *tf.json {
			if would == nil {
				would = []tasks.Task{}
			}
			return printJSON(would)
		}
		for _, q := range names {
			fmt.Printf("%s: would put %d %s tasks back in the queue (dry run: nothing changed)\n", q, got[q], *state)
		}
		printTaskTable(os.Stdout, would)
		return 0
	}
	for _, q := range names {
		fmt.Printf("%s: %d %s tasks back in the queue\n", q, got[q], *state)
	}
	return 0
}

// runForgetNode drops a departed node's emptied queues.
func runForgetNode(args []string) int {
	tf := newTaskFlags("forget-node", "all")
	pos, ok := tf.parse(args)
	if !ok {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(os.Stderr, "forget-node: want one node name")
		return 2
	}
	m, p, ok := tf.open()
	if !ok {
		return 2
	}
	defer p.close()
	defer m.Close()
	if pos[0] == p.cfg.Node || pos[0] == p.queueNode() {
		fmt.Fprintf(os.Stderr, "srs-offload forget-node: %s is this config's own node\n", pos[0])
		return 1
	}
	dropped, err := m.ForgetNode(pos[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "srs-offload", err)
		return 1
	}
	fmt.Printf("node %s forgotten: dropped %s\n", pos[0], strings.Join(dropped, ", "))
	return 0
}

func printJSON(v any) int {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// describeTask is what a task is about: its file, object or stream.
func describeTask(t tasks.Task) string {
	switch {
	case t.Path != "":
		return t.Path + " → " + t.Key
	case t.Stream != "":
		return "end of " + t.Stream
	case t.Key != "":
		return "warm " + t.Key
	}
	return t.Type
}

func printTaskTable(w io.Writer, ts []tasks.Task) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tQUEUE\tSTATE\tRETRIED\tWHAT\tLAST ERROR")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", t.ID, t.Queue, t.State, t.Retried, t.MaxRetry, describeTask(t), oneLine(t.LastErr, 120))
	}
	tw.Flush()
}

func printTask(w io.Writer, t tasks.Task) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	at := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	row("id", t.ID)
	row("queue", t.Queue)
	row("type", t.Type)
	row("state", t.State)
	row("path", t.Path)
	row("key", t.Key)
	row("stream", t.Stream)
	if t.Bytes > 0 {
		row("bytes", fmt.Sprint(t.Bytes))
	}
	row("retried", fmt.Sprintf("%d of %d", t.Retried, t.MaxRetry))
	row("last error", t.LastErr)
	row("last failed", at(t.LastFailedAt))
	row("next run", at(t.NextProcessAt))
	row("completed", at(t.CompletedAt))
	row("payload", string(t.Payload))
	tw.Flush()
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
