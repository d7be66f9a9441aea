#!/usr/bin/env bash
# bench/idle.sh - CPU and memory of an idle vine hub with 10 peers.
#
#   usage: bench/idle.sh                   measure (root; from the project root)
#          bench/idle.sh --check-topology  build the namespaces, check the underlay, run a dummy process
#                                          per host instead of vine, clean up
#
# Topology: a switch namespace vb-*-sw holds bridge br0; the hub vb-*-hub (198.18.30.1/24, overlay
# 10.42.100.1/24) and peers vb-*-p1..p10 (198.18.30.11-20, overlay 10.42.N.1/24) hang off it.  The hub
# lists every peer with a static endpoint, every peer lists the hub with one.  Once the hub has a
# direct session with all 10, the tunnels are left alone for IDLE_SETTLE s, then the hub daemon's
# utime+stime (/proc/PID/stat) is read across IDLE_SECONDS, and its RSS at the end.
#
# Environment: IDLE_SECONDS [60], IDLE_SETTLE [5], IDLE_PEERS [10], VINE_BIN [./dist/vine],
#              PATH_TIMEOUT [60] s for all sessions to come up.
# Output: progress on stderr; the last stdout line is one JSON object.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

: "${IDLE_SECONDS:=60}" "${IDLE_SETTLE:=5}" "${IDLE_PEERS:=10}" "${PATH_TIMEOUT:=60}"
PORT=4100
HUB_U=198.18.30.1 HUB_O=10.42.100.1
peer_underlay() { echo "198.18.30.$((10 + $1))"; }
peer_overlay() { echo "10.42.$1.1"; }

can_ping() { in_ns "$(bench_ns_name "$1")" ping -n -c 1 -W 1 "$2" >/dev/null 2>&1; }

build_topology() {
  local i
  bench_ns sw
  bench_bridge sw br0
  bench_ns hub
  bench_port sw br0 hub eth0 "$HUB_U/24"
  for ((i = 1; i <= IDLE_PEERS; i++)); do
    bench_ns "p$i"
    bench_port sw br0 "p$i" eth0 "$(peer_underlay "$i")/24"
  done
  for ((i = 1; i <= IDLE_PEERS; i++)); do
    wait_until 10 can_ping hub "$(peer_underlay "$i")" || bdie "underlay hub -> p$i not reachable"
  done
}

# all_direct ID...: the hub has a direct session with every listed peer (one overlay ping each first).
all_direct() {
  local i=0 id
  for id in "$@"; do
    i=$((i + 1))
    vine_path_is hub "$BENCH_WORK/hub" "$id" direct && continue
    can_ping hub "$(peer_overlay "$i")"
    vine_path_is hub "$BENCH_WORK/hub" "$id" direct || return 1
  done
}

main() {
  local b i ids=() hub_id pid_hub c0 c1 rss cpu_pct
  for b in ip ping jq timeout awk; do command -v "$b" >/dev/null || bdie "missing $b (bench/run.sh --install)"; done
  bench_init idle
  build_topology
  if [ "${1:-}" = --check-topology ]; then
    bench_spawn hub "$BENCH_WORK/dummy-hub.log" sleep 300 || bdie "dummy in hub failed"
    for ((i = 1; i <= IDLE_PEERS; i++)); do bench_spawn "p$i" "$BENCH_WORK/dummy-p$i.log" sleep 300 || bdie "dummy in p$i failed"; done
    blog "topology ok: hub reaches all $IDLE_PEERS peers over the bridge; cleaning up"
    echo '{"benchmark":"idle","check_topology":"ok"}'
    return
  fi
  [ -x "$(vine_bin)" ] || bdie "no vine executable at $VINE_BIN (make build; run from the project root)"

  mkdir -p "$BENCH_WORK/hub"; hub_id=$(vine_identity "$BENCH_WORK/hub")
  for ((i = 1; i <= IDLE_PEERS; i++)); do mkdir -p "$BENCH_WORK/p$i"; ids+=("$(vine_identity "$BENCH_WORK/p$i")"); done

  vine_config "$BENCH_WORK/hub.toml" hub "$BENCH_WORK/hub" $PORT "$HUB_O" 24 1400
  for ((i = 1; i <= IDLE_PEERS; i++)); do
    vine_peer "$BENCH_WORK/hub.toml" "peer$i" "${ids[i - 1]}" "10.42.$i.0/24" false "udp://$(peer_underlay "$i"):$PORT"
    vine_config "$BENCH_WORK/p$i.toml" "peer$i" "$BENCH_WORK/p$i" $PORT "$(peer_overlay "$i")" 24 1400
    vine_peer "$BENCH_WORK/p$i.toml" hub "$hub_id" 10.42.100.0/24 false "udp://$HUB_U:$PORT"
    vine_policy "$BENCH_WORK/p$i.toml" false false false
  done
  vine_policy "$BENCH_WORK/hub.toml" false false false

  bench_spawn hub "$BENCH_WORK/hub.log" "$(vine_bin)" daemon run -c "$BENCH_WORK/hub.toml" || bdie "hub daemon failed to start"
  pid_hub=$SPAWNED
  for ((i = 1; i <= IDLE_PEERS; i++)); do
    bench_spawn "p$i" "$BENCH_WORK/p$i.log" "$(vine_bin)" daemon run -c "$BENCH_WORK/p$i.toml" || bdie "daemon p$i failed to start"
  done
  wait_until "$PATH_TIMEOUT" all_direct "${ids[@]}" ||
    bdie "the hub did not get a direct session with all $IDLE_PEERS peers within ${PATH_TIMEOUT}s (logs: $BENCH_WORK)"
  blog "hub has direct sessions with $IDLE_PEERS peers; idle ${IDLE_SETTLE}s, then measuring ${IDLE_SECONDS}s"
  sleep "$IDLE_SETTLE" # let start-up work (handshakes, state flushes) finish; not a synchronisation
  c0=$(cpu_ticks "$pid_hub")
  sleep "$IDLE_SECONDS" # the measurement window itself
  c1=$(cpu_ticks "$pid_hub")
  alive "$pid_hub" || bdie "the hub daemon died during the measurement"
  rss=$(rss_kib "$pid_hub")
  cpu_pct=$(awk -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" -v s="$IDLE_SECONDS" 'BEGIN{printf "%.2f", 100*(b-a)/hz/s}')
  blog "idle hub with $IDLE_PEERS peers: ${cpu_pct}% CPU over ${IDLE_SECONDS}s, RSS $((rss / 1024)) MiB"
  printf '{"benchmark":"idle","peers":%s,"seconds":%s,"cpu_pct":%s,"cpu_s":%s,"rss_mib":%s}\n' "$IDLE_PEERS" "$IDLE_SECONDS" "$cpu_pct" \
    "$(awk -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz}')" "$(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')"
}

main "$@"; exit $?
