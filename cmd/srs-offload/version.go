package main

// version and commit are set at build time:
// go build -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)".
// An empty commit is taken from the VCS stamp Go puts in the binary (srs_offload_build_info).
var (
	version = "dev"
	commit  = ""
)
