#!/usr/bin/env bash
# bench/run.sh - `make bench`: vine against plain veth, wireguard-go and Nebula, plus relay, handshake
# and idle figures; writes book/src/benchmarks.md and prints its tables.
#
#   usage: bench/run.sh [--install]    (root; --install apt-gets missing tools first)
#
# Steps, all confined to network namespaces created and deleted by the scripts:
#   1. ../shared/bench/peers.sh $VPNS        two hosts, iperf3 TCP x1 / x4 / UDP, ping, CPU, RSS
#      then peers.sh vine once per fallback configuration (noble crypto; no offloads), FALLBACKS=0 skips
#   2. bench/relay.sh                        relayed vs direct TCP x1
#   3. bench/handshake.ts                    handshakes/s per responder (no namespaces)
#   4. bench/idle.sh                         idle hub with 10 peers (IDLE=0 skips it)
#   5. bench/report.ts                       ratios from the same run, targets met / not met
#
# Environment: ROUNDS [3] DURATION [10] (passed to peers.sh and relay.sh), VPNS [veth wireguard nebula
# vine], BENCH_OUT [/tmp/vine-bench] (raw output), PEERS_SH [../shared/bench/peers.sh], IDLE [1],
# PAGE [book/src/benchmarks.md], NOTE [] free text put on the page (e.g. other load on the machine).

set -u -o pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

: "${ROUNDS:=3}" "${DURATION:=10}" "${VPNS:=veth wireguard nebula vine}" "${BENCH_OUT:=/tmp/vine-bench}"
: "${PEERS_SH:=$ROOT/../shared/bench/peers.sh}" "${IDLE:=1}" "${PAGE:=book/src/benchmarks.md}" "${FALLBACKS:=1}"
export ROUNDS DURATION
BUN=./node_modules/.bin/bun

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "FATAL: $*"; exit 1; }

# binary -> Debian package that provides it
declare -A PACKAGE=(
  [ip]=iproute2 [ss]=iproute2 [ping]=iputils-ping [iperf3]=iperf3 [jq]=jq [timeout]=coreutils
  [awk]=gawk [flock]=util-linux [wireguard-go]=wireguard-go [wg]=wireguard-tools
  [nebula]=nebula [nebula-cert]=nebula
)

check_tools() { # check_tools INSTALL(0|1)
  local b missing=() pkgs=()
  for b in "${!PACKAGE[@]}"; do command -v "$b" >/dev/null || { missing+=("$b"); pkgs+=("${PACKAGE[$b]}"); }; done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$1" = 1 ]; then
    say "installing: ${pkgs[*]}"
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" ||
      die "apt-get install failed"
  else
    die "missing tools: ${missing[*]} (Debian packages: $(printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' ')); rerun with --install"
  fi
}

main() {
  local install=0
  case ${1:-} in
    --install) install=1 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; return 0 ;;
    "") ;;
    *) die "unknown argument '$1' (usage: bench/run.sh [--install])" ;;
  esac
  [ "$(id -u)" = 0 ] || die "make bench must run as root: it creates network namespaces"
  check_tools "$install"
  [ -x "$PEERS_SH" ] || [ -f "$PEERS_SH" ] || die "peers.sh not found at $PEERS_SH (set PEERS_SH)"
  [ -x "$BUN" ] || die "no $BUN (make deps)"
  ./dist/vine --version >/dev/null 2>&1 || die "./dist/vine does not run (make build)"

  local run out peers_dir rc_relay rc_idle=skipped
  run="$BENCH_OUT/$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir -p "$run" || die "cannot create $run"
  say "raw output -> $run"
  # Benchmark one fixed binary: others may rebuild dist/vine while this runs for ten minutes.
  cp ./dist/vine "$run/vine" || die "cannot copy dist/vine to $run"
  trap "rm -f '$run/vine'" EXIT # 100 MB; its hash is on the page (expanded now: $run is local)
  export VINE_BIN="$run/vine"
  local vine_sha; vine_sha=$(sha256sum "$VINE_BIN" | cut -c1-16)
  # Other work on the machine moves every figure; the page records how busy it was.
  local load_start; load_start=$(cut -d' ' -f1-3 /proc/loadavg)

  say "1/5 peers.sh $VPNS (ROUNDS=$ROUNDS DURATION=$DURATION)"
  # shellcheck disable=SC2086 # VPNS is a word list
  OUT="$run/peers" bash "$PEERS_SH" $VPNS >"$run/peers.log" 2>&1 || say "peers.sh exited non-zero (see $run/peers.log)"
  peers_dir=$(readlink -f "$run/peers/latest" 2>/dev/null)
  [ -n "$peers_dir" ] && [ -f "$peers_dir/raw.tsv" ] || die "peers.sh produced no results (see $run/peers.log)"

  # Fallback matrix: vine alone, one round each, with the switches of a host without libcrypto and of
  # a kernel without TUN/UDP offloads (labels and environments are paired by position).
  local fb_args=() i
  if [ "$FALLBACKS" = 1 ]; then
    local labels=("noble ChaCha20-Poly1305 (VINE_AEAD=noble)" "no offloads: plain TUN, no UDP GSO/GRO (VINE_OFFLOAD=0 VINE_GSO=0 VINE_UDP_GRO=0)")
    local envs=("VINE_AEAD=noble" "VINE_OFFLOAD=0 VINE_GSO=0 VINE_UDP_GRO=0")
    for i in "${!labels[@]}"; do
      say "1b/5 fallback: ${labels[$i]}"
      # shellcheck disable=SC2086 # envs[i] is a list of assignments
      env ${envs[$i]} ROUNDS=1 OUT="$run/fallback-$i" bash "$PEERS_SH" vine >"$run/fallback-$i.log" 2>&1 || say "fallback run $i exited non-zero (see $run/fallback-$i.log)"
      fb_args+=(--fallback "${labels[$i]}=$(readlink -f "$run/fallback-$i/latest" 2>/dev/null)")
    done
  fi

  say "2/5 relay.sh (DURATION=$DURATION)"
  bash bench/relay.sh >"$run/relay.json" 2>"$run/relay.log"; rc_relay=$?
  if [ "$rc_relay" != 0 ]; then say "relay.sh failed (exit $rc_relay); last lines of $run/relay.log:"; tail -n 3 "$run/relay.log" >&2; fi

  say "3/5 handshake.ts"
  "$BUN" bench/handshake.ts 2 >"$run/handshake.json" 2>"$run/handshake.log" || say "handshake.ts failed (see $run/handshake.log)"

  if [ "$IDLE" = 1 ]; then
    say "4/5 idle.sh (about 90 s)"
    bash bench/idle.sh >"$run/idle.json" 2>"$run/idle.log"; rc_idle=$?
    [ "$rc_idle" = 0 ] || say "idle.sh failed (exit $rc_idle); see $run/idle.log"
  else
    say "4/5 idle.sh skipped (IDLE=0)"
  fi

  say "5/5 report -> $PAGE"
  local note="benchmarked a copy of dist/vine, sha256 $vine_sha…; load average (1/5/15 min) at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)${NOTE:+; $NOTE}"
  out=$("$BUN" bench/report.ts --peers "$peers_dir" --relay "$run/relay.json" --handshake "$run/handshake.json" \
    --idle "$run/idle.json" --raw-dir "$run" --out "$PAGE" --note "$note" --vine "$VINE_BIN" "${fb_args[@]}") || die "report.ts failed"
  cat "$peers_dir/summary.md"
  printf '%s\n' "$out"
  say "raw output kept in $run"
}

main "$@"; exit $?
