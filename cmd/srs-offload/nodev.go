//go:build !dev

package main

import (
	"fmt"
	"os"
)

// runDev explains where the dev command is: the embedded Redis and S3 it runs on are development
// stand-ins, kept out of the production binary.
func runDev(args []string) int {
	fmt.Fprintln(os.Stderr, "srs-offload dev: this binary was built without the dev command and its embedded Redis and S3; "+
		"run `make run` (or `go run -tags dev ./cmd/srs-offload dev`), or build with `go build -tags dev ./cmd/srs-offload`")
	return 2
}
