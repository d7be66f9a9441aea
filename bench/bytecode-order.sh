#!/usr/bin/env bash
# bench/bytecode-order.sh - `make bytecode-order`: record which functions a daemon runs, for the
# executable's bytecode layout (bun build --bytecode-order; see the Makefile).
#
# Runs the two-host peers.sh scenario (start, handshake, ping, TCP and UDP through the tunnel) with
# BUN_BYTECODE_ORDER_OUT set, so each daemon writes the order of the functions it used when it
# stops; the result becomes src/bytecode.order and dist/vine is built again with it.
#   Environment: PEERS_SH [../shared/bench/peers.sh]
set -u -o pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
PEERS_SH=${PEERS_SH:-$ROOT/../shared/bench/peers.sh}
[ "$(id -u)" = 0 ] || { echo "bytecode-order: run as root (network namespaces)" >&2; exit 1; }
[ -x dist/vine ] || { echo "bytecode-order: build dist/vine first (make build)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
BUN_BYTECODE_ORDER_OUT="$out/order" ROUNDS=1 DURATION=2 PING_COUNT=20 VINE_BIN=dist/vine \
  bash "$PEERS_SH" vine >"$out/peers.log" 2>&1 || { cat "$out/peers.log" >&2; echo "bytecode-order: the run failed" >&2; exit 1; }
[ -s "$out/order" ] || { echo "bytecode-order: no order was written" >&2; exit 1; }
cp "$out/order" src/bytecode.order
echo "bytecode-order: src/bytecode.order has $(grep -c '^F ' src/bytecode.order) functions; rebuilding"
make build
