package main

// runRequeue is the older name of `tasks requeue --all`: this node's archived (failed-for-good)
// tasks back to the queue (--queue hls|dvr|warm|post|all, --dry-run).
func runRequeue(args []string) int {
	return runTasksRequeue("requeue", args, true)
}
