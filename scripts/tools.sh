#!/usr/bin/env bash
# Installs what the tests (`scripts/tools.sh`) or the benchmarks (`scripts/tools.sh bench`) need,
# and prints nothing else on success. The tests:
#   redis-server  from Debian's packages, when it is missing;
#   ffmpeg        (ffmpeg and ffprobe, for the real-media tests) from Debian's packages, when missing;
#   nginx         (the CDN edge of the warming tests) from Debian's packages, when missing, with
#                 service starts denied during the install (the tests never use a system nginx);
#   promtool      (`promtool test rules` on configs/alerts.yml) from Debian's prometheus package,
#                 when missing, with service starts denied (the tests never run a Prometheus);
#   systemd-analyze (`systemd-analyze verify` on the units in configs/) from Debian's systemd
#                 package, when missing;
#   chromium      (headless, the browser test of the web UI at /monitor/) from Debian's packages,
#                 when missing;
#   versitygw     (a real S3 gateway) built with `go install` into the tool cache,
#                 outside the repository.
#   minio         (MinIO, for the encryption tests: its built-in KMS and SSE-C) built with
#                 `go install` into the tool cache, outside the repository (dl.min.io's binaries
#                 are not reachable everywhere; the Go module proxy is), only by
#                 `scripts/tools.sh minio` (`make test-minio`): the first build is long, 15m43s
#                 wall (403 s user CPU, 1.5 GB RSS) on a shared 2-core machine with a cold module
#                 cache, beyond CI's budget. Once it is in the tool cache, `make test` runs the
#                 MinIO tests too; without it they are skipped, saying so.
# The benchmarks (make bench) need redis-server and versitygw too, and their baselines:
#   rclone        (`rclone copy --transfers 16`) from Debian's packages, when missing;
#   awscli        (`aws s3 cp`, multipart) from Debian's packages, when /usr/bin/aws is missing
#                 (an `aws` elsewhere on PATH, e.g. a pyenv shim of aws-cli v1, is not Debian's
#                 and is not used).
# The tool cache is $SRS_OFFLOAD_TOOLS (default ~/.cache/srs-offload/bin).
set -euo pipefail

mode="${1:-test}"
case "$mode" in
test | bench | minio) ;;
*)
  echo "usage: scripts/tools.sh [test|bench|minio]" >&2
  exit 2
  ;;
esac

tools="${SRS_OFFLOAD_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/srs-offload/bin}"
mkdir -p "$tools"

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if [ ! -f /tmp/.srs-offload-apt-updated ]; then
    $sudo apt-get update -qq >/dev/null
    touch /tmp/.srs-offload-apt-updated
  fi
  # Waits for another apt (another install of these tools, unattended-upgrades) to let go of the lock.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
}

# apt_install_nostart is apt_install with service starts denied: Debian's nginx would start a
# system nginx on port 80, and its postinst fails when that port is taken. A policy-rc.d that
# denies every start (invoke-rc.d and deb-systemd-invoke both honour it) is in place for the
# install only, unless the machine already has one, which is then left as it is.
apt_install_nostart() {
  local sudo="" policy=/usr/sbin/policy-rc.d rc=0
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if [ -e "$policy" ]; then
    apt_install "$@"
    return
  fi
  printf '#!/bin/sh\n# scripts/tools.sh (srs-offload): no service starts during its install\nexit 101\n' |
    $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap "$sudo rm -f $policy" EXIT
  apt_install "$@" || rc=$?
  $sudo rm -f "$policy"
  trap - EXIT
  return "$rc"
}

if ! command -v redis-server >/dev/null 2>&1; then
  echo "tools: installing redis-server (Debian)" >&2
  apt_install redis-server
  # Debian's package starts a system Redis on 6379; the tests never use it.
fi

if [ "$mode" = test ]; then
  if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
    echo "tools: installing ffmpeg (Debian)" >&2
    apt_install ffmpeg
  fi

  # Debian's `nginx` is the binary with the standard http modules (proxy, proxy_cache); nginx-light
  # and nginx-core only add modules. It lives in /usr/sbin, which a user's PATH may lack.
  if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "tools: installing nginx (Debian)" >&2
    apt_install_nostart nginx
  fi

  # Debian's prometheus package carries promtool; its postinst would start a Prometheus server.
  if ! command -v promtool >/dev/null 2>&1; then
    echo "tools: installing promtool (Debian's prometheus)" >&2
    apt_install_nostart prometheus
  fi

  if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "tools: installing systemd-analyze (Debian's systemd)" >&2
    apt_install_nostart systemd
  fi

  if ! command -v chromium >/dev/null 2>&1; then
    echo "tools: installing chromium (Debian)" >&2
    apt_install chromium
  fi
fi

if [ "$mode" = bench ]; then
  if [ ! -x /usr/bin/rclone ]; then
    echo "tools: installing rclone (Debian)" >&2
    apt_install rclone
  fi
  if [ ! -x /usr/bin/aws ]; then
    echo "tools: installing awscli (Debian)" >&2
    apt_install awscli
  fi
fi

VERSITYGW_VERSION=v1.8.0
if [ ! -x "$tools/versitygw-$VERSITYGW_VERSION" ]; then
  echo "tools: building versitygw $VERSITYGW_VERSION into $tools (takes a minute or two)" >&2
  GOBIN="$tools" GOFLAGS=-buildvcs=false go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
  mv "$tools/versitygw" "$tools/versitygw-$VERSITYGW_VERSION"
fi
ln -sf "versitygw-$VERSITYGW_VERSION" "$tools/versitygw"

if [ "$mode" = minio ]; then
  # The newest MinIO is a pseudo-version of its master branch (MinIO tags no Go module versions).
  MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
  if [ ! -x "$tools/minio-$MINIO_VERSION" ]; then
    echo "tools: building minio $MINIO_VERSION into $tools (takes several minutes)" >&2
    GOBIN="$tools" GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION"
    mv "$tools/minio" "$tools/minio-$MINIO_VERSION"
  fi
  ln -sf "minio-$MINIO_VERSION" "$tools/minio"
fi
