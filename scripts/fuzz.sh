#!/usr/bin/env bash
# Runs every fuzz target of the module, one after the other, for $FUZZTIME each (`make fuzz`).
# Targets are found with `go test -list '^Fuzz' ./...`, so a target added anywhere later is run
# without changing this script. Each runs as
#   go test -run '^$' -fuzz '^Name$' -fuzztime $FUZZTIME -parallel $FUZZPARALLEL \
#     -fuzzminimizetime $FUZZMINIMIZETIME PKG
# and gets one summary line: target, package, executions, new interesting inputs, result.
# A failing input is kept by Go in PKG/testdata/fuzz/Name/<hash>: commit it, it then runs as a
# seed in `go test ./...` (make test) until the bug is fixed, and after.
#
#   FUZZTIME      time (or count, e.g. 10000x) per target (default 60s)
#   FUZZPARALLEL  fuzzing worker processes per target (default 2)
#   FUZZMINIMIZETIME  bound on minimizing each new input (default 5s; Go's 60s default lets a
#                 slow target such as FuzzIntake spend its whole FUZZTIME minimizing)
#   FUZZ          only the targets whose name matches this extended regexp (default: all)
#   FUZZLOGS      folder for each target's full output (default: a temporary folder)
set -uo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-60s}"
parallel="${FUZZPARALLEL:-2}"
minimize="${FUZZMINIMIZETIME:-5s}"
only="${FUZZ:-.}"
go="${GO:-go}"
logs="${FUZZLOGS:-$(mktemp -d "${TMPDIR:-/tmp}/srs-offload-fuzz.XXXXXX")}"
mkdir -p "$logs"

# `go test -list` prints a package's matching names, then "ok  <package>  <time>".
list="$("$go" test -list '^Fuzz' ./... 2>&1)" || {
  echo "$list" >&2
  echo "fuzz: listing the targets failed" >&2
  exit 1
}
targets=()
names=()
while IFS= read -r line; do
  case "$line" in
  Fuzz*) names+=("$line") ;;
  ok*)
    pkg="$(awk '{print $2}' <<<"$line")"
    for n in "${names[@]}"; do
      if grep -Eq -- "$only" <<<"$n"; then targets+=("$pkg $n"); fi
    done
    names=()
    ;;
  esac
done <<<"$list"
if [ "${#targets[@]}" -eq 0 ]; then
  echo "fuzz: no fuzz targets match '$only'" >&2
  exit 1
fi
module="$("$go" list -m)"
echo "fuzz: ${#targets[@]} targets, $fuzztime each, $parallel workers; full output in $logs"

summary=()
failed=0
for t in "${targets[@]}"; do
  pkg="${t% *}"
  name="${t#* }"
  short="${pkg#"$module"/}"
  log="$logs/$(tr / _ <<<"$short")-$name.log"
  echo "fuzz: $name ($short) ..."
  # -timeout 0: the run is bounded by -fuzztime; go test's 10-minute default would cut off a
  # longer FUZZTIME.
  "$go" test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -parallel "$parallel" \
    -fuzzminimizetime "$minimize" -timeout 0 "$pkg" >"$log" 2>&1
  rc=$?
  last="$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -n 1)"
  execs="$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")"
  interesting="$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")"
  result=ok
  if [ "$rc" -ne 0 ]; then
    result=FAIL
    failed=$((failed + 1))
    tail -n 40 "$log" | sed 's/^/    /'
    input="$(sed -nE 's/.*Failing input written to (testdata\/fuzz\/[^ ]+).*/\1/p' "$log" | tail -n 1)"
    if [ -n "$input" ]; then
      dir="$("$go" list -f '{{.Dir}}' "$pkg")"
      result="FAIL, input kept in ${dir#"$PWD"/}/$input (replay: go test -run '^$name/$(basename "$input")\$' ./$short)"
    else
      result="FAIL (no input written: see $log)"
    fi
  fi
  summary+=("$(printf '%-14s %-10s execs %-10s new interesting %-5s %s' "$name" "$short" "${execs:-?}" "${interesting:-?}" "$result")")
done

echo
echo "fuzz summary ($fuzztime per target):"
printf '  %s\n' "${summary[@]}"
if [ "$failed" -gt 0 ]; then
  echo "fuzz: $failed of ${#targets[@]} targets failed" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ok"
