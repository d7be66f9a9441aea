#!/usr/bin/env bash
# bench/relay.sh - TCP x1 throughput through a vine relay, compared with the same pair linked directly.
#
#   usage: bench/relay.sh                   run both measurements (root; from the project root)
#          bench/relay.sh --check-topology  build both topologies, check reachability and isolation,
#                                           run a dummy process per host instead of vine, clean up
#
# Relayed topology (A and B share no link; R does not forward IP):
#
#   vb-*-a  eth0 198.18.20.1/24 <-> ra 198.18.20.2/24  vb-*-r  rb 198.18.21.2/24 <-> eth0 198.18.21.1/24  vb-*-b
#   overlay 10.42.1.1/24                                10.42.3.1/24 (relay_service)                 10.42.2.1/24
#
#   A and B list R as relay_capable with a static endpoint and each other without an endpoint;
#   R lists both with endpoints.  The run waits until `vine sessions` on A shows the path to B as
#   "relay" (and B's with A too, and an overlay ping is answered), then runs iperf3 TCP x1 A -> B
#   for DURATION seconds.
#
# Direct topology: vb-*-da eth0 198.18.22.1/24 <-> eth0 198.18.22.2/24 vb-*-db, static endpoints both
# ways, same overlay addresses and MTU.
#
# Environment: DURATION [10] s, RELAY_MTU [1400] overlay MTU for both runs, VINE_BIN [./dist/vine],
#              PATH_TIMEOUT [60] s to wait for the relayed / direct path.
# Output: progress on stderr; the last stdout line is one JSON object.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

: "${DURATION:=10}" "${RELAY_MTU:=1400}" "${PATH_TIMEOUT:=60}"
PORT=4100
A_U=198.18.20.1 RA_U=198.18.20.2 RB_U=198.18.21.2 B_U=198.18.21.1 DA_U=198.18.22.1 DB_U=198.18.22.2
A_O=10.42.1.1 B_O=10.42.2.1 R_O=10.42.3.1

can_ping() { in_ns "$(bench_ns_name "$1")" ping -n -c 1 -W 1 "$2" >/dev/null 2>&1; }

build_relay_topology() {
  bench_ns a; bench_ns r; bench_ns b
  bench_link a eth0 "$A_U/24" r ra "$RA_U/24"
  bench_link r rb "$RB_U/24" b eth0 "$B_U/24"
  in_ns "$(bench_ns_name r)" sysctl -qw net.ipv4.ip_forward=0 || bdie "cannot turn off forwarding in R"
  wait_until 10 can_ping a "$RA_U" || bdie "underlay A -> R not reachable"
  wait_until 10 can_ping b "$RB_U" || bdie "underlay B -> R not reachable"
  # The point of the exercise: no underlay path between A and B, even with a route through R.
  in_ns "$(bench_ns_name a)" ip route add 198.18.21.0/24 via "$RA_U" || bdie "route A -> B's net failed"
  if can_ping a "$B_U"; then bdie "A reaches B's underlay $B_U: the relay topology is not isolated"; fi
}

build_direct_topology() {
  bench_ns da; bench_ns db
  bench_link da eth0 "$DA_U/24" db eth0 "$DB_U/24"
  wait_until 10 can_ping da "$DB_U" || bdie "underlay direct A -> B not reachable"
}

check_topology() {
  local h
  build_relay_topology
  build_direct_topology
  for h in a r b da db; do
    bench_spawn "$h" "$BENCH_WORK/dummy-$h.log" sleep 300 || bdie "dummy process in $h failed"
  done
  blog "topology ok: A-R and R-B reachable, A-B isolated, direct pair reachable; cleaning up"
  echo '{"benchmark":"relay","check_topology":"ok"}'
}

can_ping_size() { in_ns "$(bench_ns_name "$1")" ping -n -M do -s "$3" -c 2 -W 1 "$2" >/dev/null 2>&1; }

# vine_drops NS STATE_DIR: the node's non-zero drop_* counters, compact.
vine_drops() {
  in_ns "$(bench_ns_name "$1")" "$(vine_bin)" counters --state-dir "$2" --format json 2>/dev/null |
    jq -c '.node | with_entries(select((.key | startswith("drop_")) and .value != 0))' || echo "unavailable"
}

# ip_frag_counters NS: IP fragmentation counters of the namespace (fragments mean the relay overhead
# pushed packets past the underlay MTU).
ip_frag_counters() {
  in_ns "$(bench_ns_name "$1")" awk '$1 == "Ip:" { if (!n++) { for (i = 2; i <= NF; i++) k[i] = $i } else {
      for (i = 2; i <= NF; i++) if (k[i] ~ /^(FragCreates|ReasmOKs|ReasmFails)$/) printf "%s=%s ", k[i], $i } }' /proc/net/snmp
}

# start_host NAME: `vine daemon run` in namespace NAME with $BENCH_WORK/NAME.toml; PID in $SPAWNED.
start_host() {
  bench_spawn "$1" "$BENCH_WORK/$1.log" "$(vine_bin)" daemon run -c "$BENCH_WORK/$1.toml" ||
    bdie "vine daemon in $1 failed to start (log: $BENCH_WORK/$1.log)"
}

# ping_then_path NS STATE PEER_ID PATH TARGET: send one probe through the overlay, then check the path.
ping_then_path() {
  in_ns "$(bench_ns_name "$1")" ping -n -c 1 -W 1 "$5" >/dev/null 2>&1
  vine_path_is "$1" "$2" "$3" "$4"
}

# relay_ready ID_A ID_B: both ends see each other over "relay" and an overlay ping A -> B is answered.
relay_ready() {
  can_ping a "$B_O" && vine_path_is a "$BENCH_WORK/a" "$2" relay && vine_path_is b "$BENCH_WORK/b" "$1" relay
}

run_relayed() { # prints "MBPS RELAY_CPU_S FULL_SIZE_OK UNDERLAY_FRAGMENTS"
  local h id_a id_b id_r pid_a pid_r pid_b c0 c1
  build_relay_topology
  for h in a r b; do mkdir -p "$BENCH_WORK/$h"; done
  id_a=$(vine_identity "$BENCH_WORK/a") id_r=$(vine_identity "$BENCH_WORK/r") id_b=$(vine_identity "$BENCH_WORK/b")

  vine_config "$BENCH_WORK/a.toml" bench-a "$BENCH_WORK/a" $PORT "$A_O" 24 "$RELAY_MTU"
  vine_peer "$BENCH_WORK/a.toml" relay "$id_r" 10.42.3.0/24 true "udp://$RA_U:$PORT"
  vine_peer "$BENCH_WORK/a.toml" bench-b "$id_b" 10.42.2.0/24 false
  vine_policy "$BENCH_WORK/a.toml" true true false

  vine_config "$BENCH_WORK/b.toml" bench-b "$BENCH_WORK/b" $PORT "$B_O" 24 "$RELAY_MTU"
  vine_peer "$BENCH_WORK/b.toml" relay "$id_r" 10.42.3.0/24 true "udp://$RB_U:$PORT"
  vine_peer "$BENCH_WORK/b.toml" bench-a "$id_a" 10.42.1.0/24 false
  vine_policy "$BENCH_WORK/b.toml" true true false

  vine_config "$BENCH_WORK/r.toml" relay "$BENCH_WORK/r" $PORT "$R_O" 24 "$RELAY_MTU"
  vine_peer "$BENCH_WORK/r.toml" bench-a "$id_a" 10.42.1.0/24 false "udp://$A_U:$PORT"
  vine_peer "$BENCH_WORK/r.toml" bench-b "$id_b" 10.42.2.0/24 false "udp://$B_U:$PORT"
  vine_policy "$BENCH_WORK/r.toml" true true true

  start_host r; pid_r=$SPAWNED
  start_host a; pid_a=$SPAWNED
  start_host b; pid_b=$SPAWNED
  if ! wait_until "$PATH_TIMEOUT" relay_ready "$id_a" "$id_b"; then
    bdie "no working relayed path within ${PATH_TIMEOUT}s: A->B path $(vine_session_path a "$BENCH_WORK/a" "$id_b" || echo none), B->A path $(vine_session_path b "$BENCH_WORK/b" "$id_a" || echo none), overlay ping A->B $(can_ping a "$B_O" && echo answered || echo unanswered) (logs: $BENCH_WORK)"
  fi
  blog "relayed: A -> B and B -> A paths are relay and ping is answered; iperf3 TCP x1 for ${DURATION}s"
  # The largest overlay packet the route allows (vine gives relayed peers' routes the relay MTU,
  # 1360) must cross the relay with DF set, or TCP stalls on every full segment.
  local route_mtu
  route_mtu=$(in_ns "$(bench_ns_name a)" ip route get "$B_O" | grep -o 'mtu [0-9]*' | cut -d' ' -f2)
  route_mtu=${route_mtu:-$RELAY_MTU}
  blog "route MTU towards B while relayed: $route_mtu"
  if can_ping_size a "$B_O" $((route_mtu - 28)); then FULL_SIZE_OK=true; else
    FULL_SIZE_OK=false; blog "WARNING: a full-size ($route_mtu-byte) overlay packet does not cross the relay; expect TCP to stall"
  fi
  c0=$(cpu_ticks "$pid_r")
  iperf_tcp1 a b "$B_O" "$DURATION" "$BENCH_WORK/relayed.json" || bdie "relayed iperf3 failed"
  c1=$(cpu_ticks "$pid_r")
  # the path must still be relay after the run, or the figure measured something else
  vine_path_is a "$BENCH_WORK/a" "$id_b" relay || bdie "path A -> B changed away from relay during the run"
  for h in a r b; do blog "relayed: $h: vine drops $(vine_drops "$h" "$BENCH_WORK/$h"), underlay IP $(ip_frag_counters "$h")"; done
  FRAGMENTS=0 # fresh namespaces: the counters cover this run only
  for h in a r b; do FRAGMENTS=$((FRAGMENTS + $(ip_frag_counters "$h" | grep -o 'FragCreates=[0-9]*' | cut -d= -f2))); done
  for h in "$pid_a" "$pid_r" "$pid_b"; do bench_kill "$h"; done
  echo "$IPERF_MBPS $(awk -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz}') $FULL_SIZE_OK $FRAGMENTS"
}

run_direct() { # prints MBPS
  local h id_a id_b pid_a pid_b
  build_direct_topology
  for h in da db; do mkdir -p "$BENCH_WORK/$h"; done
  id_a=$(vine_identity "$BENCH_WORK/da") id_b=$(vine_identity "$BENCH_WORK/db")
  vine_config "$BENCH_WORK/da.toml" bench-a "$BENCH_WORK/da" $PORT "$A_O" 24 "$RELAY_MTU"
  vine_peer "$BENCH_WORK/da.toml" bench-b "$id_b" 10.42.2.0/24 false "udp://$DB_U:$PORT"
  vine_policy "$BENCH_WORK/da.toml" false false false
  vine_config "$BENCH_WORK/db.toml" bench-b "$BENCH_WORK/db" $PORT "$B_O" 24 "$RELAY_MTU"
  vine_peer "$BENCH_WORK/db.toml" bench-a "$id_a" 10.42.1.0/24 false "udp://$DA_U:$PORT"
  vine_policy "$BENCH_WORK/db.toml" false false false
  start_host da; pid_a=$SPAWNED
  start_host db; pid_b=$SPAWNED
  wait_until "$PATH_TIMEOUT" ping_then_path da "$BENCH_WORK/da" "$id_b" direct "$B_O" ||
    bdie "direct A -> B session never showed path \"direct\" within ${PATH_TIMEOUT}s (logs: $BENCH_WORK)"
  blog "direct: A -> B path is direct; iperf3 TCP x1 for ${DURATION}s"
  iperf_tcp1 da db "$B_O" "$DURATION" "$BENCH_WORK/direct.json" || bdie "direct iperf3 failed"
  for h in "$pid_a" "$pid_b"; do bench_kill "$h"; done
  echo "$IPERF_MBPS"
}

main() {
  local b
  for b in ip iperf3 ping jq ss timeout awk; do command -v "$b" >/dev/null || bdie "missing $b (bench/run.sh --install)"; done
  bench_init relay
  if [ "${1:-}" = --check-topology ]; then check_topology; return; fi
  [ -x "$(vine_bin)" ] || bdie "no vine executable at $VINE_BIN (make build; run from the project root)"

  local relayed relay_cpu full_size_ok fragments direct pct
  # command substitution runs in a subshell: its namespaces and PIDs would escape our cleanup, so
  # the measurements write to files instead.
  run_relayed >"$BENCH_WORK/relayed.out" || exit 1
  read -r relayed relay_cpu full_size_ok fragments <"$BENCH_WORK/relayed.out"
  run_direct >"$BENCH_WORK/direct.out" || exit 1
  read -r direct <"$BENCH_WORK/direct.out"
  pct=$(awk -v r="$relayed" -v d="$direct" 'BEGIN{ if (d > 0) printf "%.1f", 100*r/d; else print "null" }')
  blog "relayed TCP x1: $relayed Mbit/s (relay CPU ${relay_cpu}s), direct TCP x1: $direct Mbit/s, relayed = $pct % of direct"
  printf '{"benchmark":"relay","duration_s":%s,"overlay_mtu":%s,"relayed_tcp1_mbps":%s,"direct_tcp1_mbps":%s,"relayed_pct_of_direct":%s,"relay_cpu_s":%s,"relay_full_size_packet_ok":%s,"underlay_fragments_created":%s}\n' \
    "$DURATION" "$RELAY_MTU" "$relayed" "$direct" "$pct" "$relay_cpu" "$full_size_ok" "$fragments"
}

main "$@"; exit $?
