# bench/lib.sh - shared helpers for bench/relay.sh and bench/idle.sh (source it, do not run it).
#
# Every namespace is created by bench_ns, every process by bench_spawn; bench_cleanup (installed as
# an EXIT trap by bench_init) kills exactly those PIDs and deletes exactly those namespaces.
# Nothing is ever configured in the root namespace: veth pairs are created inside a namespace.

set -u -o pipefail
export LC_ALL=C

VINE_BIN=${VINE_BIN:-./dist/vine}
CLK_TCK=$(getconf CLK_TCK)
BENCH_TAG=""           # unique per run: namespace names are vb-$BENCH_TAG-<name>
BENCH_WORK=""          # temp dir: state dirs, configs, logs
BENCH_NAMESPACES=()    # created by us, deleted in cleanup
BENCH_PIDS=()          # "pid:netns-inode", killed in cleanup
SPAWNED=""

blog() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bdie() { blog "FATAL: $*"; exit 1; }
# every foreground command runs under a timeout (TMO seconds, default 20)
bt() { timeout -k 2 "${TMO:-20}" "$@"; }
in_ns() { local ns=$1; shift; timeout -k 2 "${TMO:-20}" ip netns exec "$ns" "$@"; }

wait_until() { # wait_until SECONDS cmd... : poll every 0.2 s
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.2
  done
}

alive() { # running and not a zombie
  local st; st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }; [ "${st:0:1}" != Z ]
}
ns_inode() { stat -L -c %i "/run/netns/$1" 2>/dev/null; }
pid_ns_inode() { local l; l=$(readlink "/proc/$1/ns/net" 2>/dev/null) || return 1; l=${l#net:[}; echo "${l%]}"; }

# bench_init NAME: root check, unique tag, work dir, cleanup trap.
bench_init() {
  [ "$(id -u)" = 0 ] || bdie "$1 must run as root (network namespaces)"
  BENCH_TAG="$$$(printf '%04x' $((RANDOM % 65536)))"
  BENCH_WORK=$(mktemp -d "/tmp/vine-bench-$1.XXXXXX")
  trap bench_cleanup EXIT
  trap 'blog "interrupted"; exit 130' INT
  trap 'blog "terminated"; exit 143' TERM
}

bench_ns_name() { echo "vb-$BENCH_TAG-$1"; }

# bench_ns NAME: create namespace vb-<tag>-NAME with lo up.
bench_ns() {
  local ns; ns=$(bench_ns_name "$1")
  [ -e "/run/netns/$ns" ] && bdie "namespace $ns already exists"
  bt ip netns add "$ns" || bdie "ip netns add $ns failed"
  BENCH_NAMESPACES+=("$ns")
  in_ns "$ns" ip link set lo up || bdie "lo up in $ns failed"
}

# bench_link NS1 IF1 ADDR1/LEN NS2 IF2 ADDR2/LEN: a veth pair between two of our namespaces.
bench_link() {
  local n1 n2; n1=$(bench_ns_name "$1"); n2=$(bench_ns_name "$4")
  in_ns "$n1" ip link add "$2" mtu 1500 type veth peer name "$5" mtu 1500 netns "$n2" &&
    in_ns "$n1" ip addr add "$3" dev "$2" && in_ns "$n2" ip addr add "$6" dev "$5" &&
    in_ns "$n1" ip link set "$2" up && in_ns "$n2" ip link set "$5" up || bdie "veth $1/$2 <-> $4/$5 failed"
}

# bench_bridge NS BR: a bridge inside namespace NS; bench_port NS BR PEER_NS IF ADDR/LEN attaches a host.
bench_bridge() {
  local n; n=$(bench_ns_name "$1")
  in_ns "$n" ip link add "$2" type bridge && in_ns "$n" ip link set "$2" up || bdie "bridge $2 in $1 failed"
}
bench_port() {
  local n pn; n=$(bench_ns_name "$1"); pn=$(bench_ns_name "$3")
  in_ns "$n" ip link add "p-$3" type veth peer name "$4" netns "$pn" &&
    in_ns "$n" ip link set "p-$3" master "$2" && in_ns "$n" ip link set "p-$3" up &&
    in_ns "$pn" ip addr add "$5" dev "$4" && in_ns "$pn" ip link set "$4" up || bdie "port for $3 on $1/$2 failed"
}

# bench_spawn NAME LOGFILE cmd... : start cmd inside namespace NAME; PID in $SPAWNED.
# `ip netns exec` execs the command, so $! is the process itself.
bench_spawn() {
  local ns ino; ns=$(bench_ns_name "$1"); ino=$(ns_inode "$ns") || bdie "namespace $ns missing"
  local logf=$2; shift 2
  ip netns exec "$ns" "$@" >>"$logf" 2>&1 </dev/null &
  SPAWNED=$!
  BENCH_PIDS+=("$SPAWNED:$ino")
  sleep 0.2
  alive "$SPAWNED" || { blog "$* in $ns exited at once; log tail:"; tail -n 5 "$logf" >&2; return 1; }
}

# kill_one PID INODE: TERM, then KILL after 5 s; only while it still lives in our namespace.
kill_one() {
  local pid=$1 ino=$2 i
  alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
  [ "$(pid_ns_inode "$pid")" = "$ino" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid" && [ "$(pid_ns_inode "$pid")" = "$ino" ]; then kill -KILL "$pid" 2>/dev/null; fi
  wait "$pid" 2>/dev/null
  return 0
}
# bench_kill PID: kill one process this run spawned (looked up in the registry).
bench_kill() {
  local e
  for e in "${BENCH_PIDS[@]}"; do [ "${e%%:*}" = "$1" ] && kill_one "${e%%:*}" "${e#*:}"; done
  return 0
}

bench_cleanup() {
  local rc=$? e ns left
  trap - EXIT INT TERM
  for e in "${BENCH_PIDS[@]}"; do kill_one "${e%%:*}" "${e#*:}"; done
  for ns in "${BENCH_NAMESPACES[@]}"; do
    [ -e "/run/netns/$ns" ] || continue
    left=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
    [ -n "$left" ] && blog "WARNING: unrecorded processes in $ns: $left(left alone)"
    bt ip netns del "$ns" || blog "WARNING: ip netns del $ns failed"
  done
  if [ -n "$BENCH_WORK" ] && [ -d "$BENCH_WORK" ]; then
    if [ $rc -ne 0 ]; then
      blog "failed (exit $rc); logs kept in $BENCH_WORK"
    else
      rm -rf "$BENCH_WORK"
    fi
  fi
  exit $rc
}

cpu_ticks() { # utime+stime (all threads) of one PID, in clock ticks
  local st f; st=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  read -ra f <<<"${st##*) }"; echo $((f[11] + f[12]))
}
rss_kib() { awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status" 2>/dev/null; }

# ---------------------------------------------------------------- vine
vine_bin() { readlink -f "$VINE_BIN" 2>/dev/null; }

# vine_identity DIR: create an identity in DIR and print its peer_id.
vine_identity() {
  local bin; bin=$(vine_bin)
  bt "$bin" identity init --state-dir "$1" >/dev/null 2>&1 || bdie "vine identity init --state-dir $1 failed"
  bt "$bin" identity show --state-dir "$1" --format json | jq -r .peer_id
}

# vine_config FILE NAME STATE_DIR PORT ADDRESS PREFIX_LEN MTU: [node] and [tun]; peers and policy follow.
vine_config() {
  cat >"$1" <<EOF
[node]
name = "$2"
network_id = "vine-bench"
state_dir = "$3"
listen_port = $4

[tun]
name = "vine0"
address = "$5"
prefix_len = $6
mtu = $7

EOF
  chmod 600 "$1"
}
# vine_peer FILE NAME PEER_ID PREFIX RELAY_CAPABLE [ENDPOINT]
vine_peer() {
  {
    printf '[[allowed_peers]]\nname = "%s"\npeer_id = "%s"\nprefix = "%s"\nrelay_capable = %s\n' "$2" "$3" "$4" "$5"
    [ -n "${6:-}" ] && printf 'endpoint = "%s"\n' "$6"
    echo
  } >>"$1"
}
# vine_policy FILE ALLOW_RELAY ALLOW_SIGNALING_UPGRADE RELAY_SERVICE
vine_policy() {
  printf '[policy]\nstrict_allowlist = true\nallow_relay = %s\nallow_signaling_upgrade = %s\nrelay_service = %s\n' "$2" "$3" "$4" >>"$1"
}

# vine_session_path NS STATE_DIR PEER_ID: the path ("direct", "relay", ...) of the session with PEER_ID.
vine_session_path() {
  in_ns "$(bench_ns_name "$1")" "$(vine_bin)" sessions --state-dir "$2" --format json 2>/dev/null |
    jq -er --arg p "$3" '.sessions[] | select(.peer_id == $p) | .path'
}
vine_path_is() { [ "$(vine_session_path "$1" "$2" "$3")" = "$4" ]; }

# iperf_tcp1 CLIENT_NS SERVER_NS SERVER_ADDR SECONDS JSON_FILE: TCP x1 client -> server; Mbit/s in
# $IPERF_MBPS.  Not for $(...): the server PID must land in this shell's registry.
iperf_tcp1() {
  local c=$1 s=$2 addr=$3 secs=$4 f=$5 srv
  bench_spawn "$s" "$BENCH_WORK/iperf3-server.log" iperf3 -s -p 5201 -B "$addr" || return 1
  srv=$SPAWNED
  wait_until 5 in_ns "$(bench_ns_name "$s")" bash -c "ss -ltnH 'sport = :5201' | grep -q ." || { blog "iperf3 server not listening"; return 1; }
  TMO=$((secs + 30)) in_ns "$(bench_ns_name "$c")" iperf3 -c "$addr" -p 5201 -t "$secs" -J --connect-timeout 5000 >"$f" 2>>"$BENCH_WORK/iperf3-client.log"
  local rc=$?
  bench_kill "$srv"
  if [ $rc -ne 0 ] || jq -e '.error' "$f" >/dev/null 2>&1; then
    blog "iperf3 failed (rc=$rc) $(jq -r '.error // empty' "$f" 2>/dev/null)"; return 1
  fi
  IPERF_MBPS=$(jq -r '.end.sum_received.bits_per_second / 1e6 | . * 10 | round / 10' "$f")
}
