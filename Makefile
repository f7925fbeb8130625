# srs-offload. `make run` needs nothing installed; `make test` installs what the tests use
# (Debian's redis-server, ffmpeg, nginx and chromium, versitygw built into the tool cache outside the repository);
# `make bench` installs what the benchmarks use (redis-server, versitygw, Debian's rclone and awscli).

GO    ?= go
TOOLS ?= $(or $(SRS_OFFLOAD_TOOLS),$(HOME)/.cache/srs-offload/bin)
export SRS_OFFLOAD_TOOLS := $(TOOLS)

# `make build` stamps the version (git describe) and the commit into the binary; override them
# (VERSION=v1.2.3 COMMIT=…) where there is no git checkout, e.g. in a container build.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
BIN     ?= bin/srs-offload

.PHONY: build run test test-minio tools lint chaos bench fuzz scale

build:
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o $(BIN) ./cmd/srs-offload

# The embedded default: hooks on 127.0.0.1:8085, an in-process Redis and S3 (objects in ./data/s3).
# The dev command and its embedded servers (miniredis, gofakes3) are built only with -tags dev,
# so the binary of `make build` does not carry them.
run:
	$(GO) run -tags dev ./cmd/srs-offload dev

tools:
	@bash scripts/tools.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags dev ./cmd/srs-offload

test: tools lint
	$(GO) test -count=1 -timeout 20m ./...

# MinIO with its built-in KMS (the encryption tests): built once into the tool cache (several
# minutes, so not part of `make tools`); from then on `make test` runs these tests too.
test-minio: tools
	@bash scripts/tools.sh minio
	$(GO) test -count=1 -timeout 20m -run 'MinIO' ./worker/ ./uploader/ ./internal/...

# Every fuzz target (go test -list '^Fuzz' ./...), one at a time, FUZZTIME each (about a minute per
# target by default): prints a line per target and fails if one fails; a failing input is kept in
# <package>/testdata/fuzz/<target>/ (commit it: `make test` then runs it as a seed, as it runs all seeds).
FUZZTIME ?= 60s
fuzz: tools
	@FUZZTIME=$(FUZZTIME) GO=$(GO) bash scripts/fuzz.sh

# The chaos test alone, verbose (it also runs in `make test`): >=1000 segments and DVR files while
# the worker and the hooks process are SIGKILLed, storage and Redis stopped, hooks lost and
# duplicated, SRS's hls_cleanup on a 6 s window; checks every VoD playlist; prints the counts.
chaos: tools
	$(GO) test -count=1 -v -timeout 15m -run '^TestChaos$$' ./cmd/srs-offload/

# The benchmarks (B1-B4, see README): builds srs-offload, starts its own redis-server and versitygw,
# runs each benchmark against its baselines and writes docs/BENCHMARKS.md (about 10 minutes).
# BENCH_FLAGS=-quick scales everything down to check the harness in about a minute;
# BENCH_FLAGS="-profiles DIR" also saves CPU profiles of srs-offload.
bench:
	@bash scripts/tools.sh bench
	$(GO) run ./internal/bench -out docs/BENCHMARKS.md $(BENCH_FLAGS)

# The scale model (issue 15, not part of `make test`): N streams with SRS's cadence (on_publish,
# one on_hls every 2 s, on_unpublish) against one `serve`, a real redis-server and versitygw, for
# each N of SCALE_N, SCALE_DUR each, in the default config and with playlist.live served; writes
# docs/SCALE.md (about 15 minutes with the defaults). SCALE_FLAGS passes more (-modes, -drain, -idle).
SCALE_N   ?= 100,1000,10000
SCALE_DUR ?= 60s
scale:
	@bash scripts/tools.sh bench
	$(GO) run ./internal/scale -n $(SCALE_N) -dur $(SCALE_DUR) -out docs/SCALE.md $(SCALE_FLAGS)
