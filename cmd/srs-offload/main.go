// Command srs-offload is the SRS hook target and the worker behind it: it takes on_dvr and on_hls,
// records each job in Redis, uploads the file to S3-compatible storage, verifies it and purges it.
//
// It owns the wiring: build.go turns a config into the running parts of a role, once (compile:
// settings' values into the other packages'; build: the parts a role uses; start and shutdown:
// its long-running duties, stopped in order within worker.shutdown_timeout), and each subcommand
// has its file.
package main

import (
	"fmt"
	"os"
)

const usage = `usage: srs-offload <command> [-c config.yaml] [flags]

commands:
  serve     hook receiver and worker in one process (the normal deployment on an SRS host)
  hooks     hook receiver only
  worker    worker only
  dev       everything with an embedded Redis and S3: nothing to install (make run)
  check     validate a config, print every problem, exit 2 if there is one
  requeue   put this node's archived (failed-for-good) tasks back in the queue [--queue hls|dvr|warm|post|all] [--dry-run]
  status    every node's queues, disk backlog, uploads in flight, last errors, live streams, from Redis [--json] [--errors N]
  ls        what is stored per stream: HLS sessions and DVR recordings [app[/stream]] [--json]
  tasks     list, show, requeue and delete queued tasks: tasks ls|show|requeue|delete (tasks help)
  forget-node NODE  drop a departed node's queues once they are empty
  version   print the version and commit (stamped by make build)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var code int
	switch cmd {
	case "serve":
		code = runServe(cmd, args, roles{hooks: true, worker: true})
	case "hooks":
		code = runServe(cmd, args, roles{hooks: true})
	case "worker":
		code = runServe(cmd, args, roles{worker: true})
	case "dev":
		code = runDev(args)
	case "check":
		code = runCheck(args)
	case "requeue":
		code = runRequeue(args)
	case "status":
		code = runStatus(args, os.Stdout, os.Stderr)
	case "ls":
		code = runLs(args)
	case "tasks":
		code = runTasks(args)
	case "forget-node":
		code = runForgetNode(args)
	case "version", "--version", "-v":
		fmt.Println(versionLine())
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "srs-offload: unknown command %q\n\n%s", cmd, usage)
		code = 2
	}
	os.Exit(code)
}
