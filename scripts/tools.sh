#!/usr/bin/env bash
# Installs what the tests need and prints nothing else on success:
#   redis-server  from Debian's packages, when it is missing;
#   ffmpeg        (ffmpeg and ffprobe, for the real-media tests) from Debian's packages, when missing;
#   versitygw     (a real S3 gateway) built with `go install` into the tool cache,
#                 outside the repository.
# The tool cache is $SRS_OFFLOAD_TOOLS (default ~/.cache/srs-offload/bin).
set -euo pipefail

tools="${SRS_OFFLOAD_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/srs-offload/bin}"
mkdir -p "$tools"

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if [ ! -f /tmp/.srs-offload-apt-updated ]; then
    $sudo apt-get update -qq >/dev/null
    touch /tmp/.srs-offload-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v redis-server >/dev/null 2>&1; then
  echo "tools: installing redis-server (Debian)" >&2
  apt_install redis-server
  # Debian's package starts a system Redis on 6379; the tests never use it.
fi

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  echo "tools: installing ffmpeg (Debian)" >&2
  apt_install ffmpeg
fi

VERSITYGW_VERSION=v1.8.0
if [ ! -x "$tools/versitygw-$VERSITYGW_VERSION" ]; then
  echo "tools: building versitygw $VERSITYGW_VERSION into $tools (takes a minute or two)" >&2
  GOBIN="$tools" GOFLAGS=-buildvcs=false go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
  mv "$tools/versitygw" "$tools/versitygw-$VERSITYGW_VERSION"
fi
ln -sf "versitygw-$VERSITYGW_VERSION" "$tools/versitygw"
