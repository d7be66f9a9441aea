#!/usr/bin/env bash
# Runs a test group with the pinned Bun and prints the closing line "N passed, N failed".
#   test/run.sh unit|e2e|soak|all
set -u -o pipefail
cd "$(dirname "$0")/.."
BUN=./node_modules/.bin/bun
group=${1:-all}
passed=0 failed=0 rc=0
log=$(mktemp)

run() { # run DIR [extra bun test args]
  local dir=$1; shift
  ls "$dir"/*.test.ts >/dev/null 2>&1 || return 0
  echo "== bun test $dir" >&2
  "$BUN" test --timeout 120000 "$@" "./$dir" 2>&1 | tee "$log"
  local r=${PIPESTATUS[0]}
  local p f
  p=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  f=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  passed=$((passed + p)); failed=$((failed + f))
  # A runner that died (non-zero exit) without counting a failure still fails the run.
  if [ "$r" -ne 0 ]; then rc=1; [ "$f" = 0 ] && failed=$((failed + 1)); fi
}

case $group in
  unit) run test/unit ;;
  e2e)  run test/e2e --max-concurrency=1 ;;
  soak) run test/soak --max-concurrency=1 ;;
  all)  run test/unit; run test/e2e --max-concurrency=1 ;;
  *) echo "usage: test/run.sh unit|e2e|soak|all" >&2; exit 2 ;;
esac
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$rc" = 0 ] && [ "$failed" = 0 ]
