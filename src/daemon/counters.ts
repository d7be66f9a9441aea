// Named counters, monotonic across restarts.
//
// Two sources feed them: the data-plane worker's shared tables (packets, bytes, drops) and the
// main thread's own events (handshakes, path changes, rejected claims). At start the last values
// persisted in SQLite become a baseline, so `vine counters` keeps climbing after a restart or crash.

import {
  NODE_COUNTERS,
  PC_DROP_NO_SESSION,
  PC_DROP_REPLAY,
  PC_DROP_SPOOFED,
  PC_RELAY_BYTES_FOR,
  PC_RELAYED_FOR,
  PC_RX_BYTES,
  PC_RX_DIRECT,
  PC_RX_PACKETS,
  PC_RX_RELAYED,
  PC_STRIDE,
  PC_TX_BYTES,
  PC_TX_PACKETS,
  PC_TX_RELAYED,
  type TableViews,
} from "../dataplane/tables.ts";

export const NODE_SCOPE = "node";

/** Per-peer counters read from the shared table: name → field. */
export const PEER_TABLE_COUNTERS: Record<string, number> = {
  rx_packets: PC_RX_PACKETS,
  rx_bytes: PC_RX_BYTES,
  tx_packets: PC_TX_PACKETS,
  tx_bytes: PC_TX_BYTES,
  rx_direct_packets: PC_RX_DIRECT,
  rx_relayed_packets: PC_RX_RELAYED,
  tx_relayed_packets: PC_TX_RELAYED,
  relayed_for_packets: PC_RELAYED_FOR,
  relayed_for_bytes: PC_RELAY_BYTES_FOR,
  drop_spoofed_source: PC_DROP_SPOOFED,
  drop_no_session: PC_DROP_NO_SESSION,
  drop_replay: PC_DROP_REPLAY,
};

export type CounterMap = Map<string, Map<string, number>>; // scope → name → value

export class Counters {
  private readonly own: CounterMap = new Map();
  private readonly base: CounterMap = new Map();
  private views: TableViews | null = null;
  private peerScopes: () => { index: number; id: string }[] = () => [];

  attach(views: TableViews, peers: () => { index: number; id: string }[]): void {
    this.views = views;
    this.peerScopes = peers;
  }

  /** Values persisted by the previous run (they become the baseline). */
  setBaseline(rows: { scope: string; name: string; value: number }[]): void {
    for (const r of rows) bump(this.base, r.scope, r.name, r.value);
  }

  /** Bumped on every main-thread increment: lets the persistence batch skip an idle second. */
  version = 0;

  inc(name: string, scope: string = NODE_SCOPE, by = 1): void {
    this.version++;
    bump(this.own, scope, name, by);
    if (scope !== NODE_SCOPE) bump(this.own, NODE_SCOPE, name, by);
  }

  /** Everything, baseline included: scope → name → value. */
  snapshot(): CounterMap {
    const out: CounterMap = new Map();
    for (const [scope, m] of this.base) for (const [n, v] of m) bump(out, scope, n, v);
    for (const [scope, m] of this.own) for (const [n, v] of m) bump(out, scope, n, v);
    const v = this.views;
    if (v) {
      for (const region of v.nodeRegions) NODE_COUNTERS.forEach((n, i) => bump(out, NODE_SCOPE, n, region[i]!));
      for (const p of this.peerScopes()) {
        for (const [n, f] of Object.entries(PEER_TABLE_COUNTERS)) bump(out, p.id, n, v.peerCounters[p.index * PC_STRIDE + f]!);
      }
    }
    return out;
  }

  /** The value persisted by the previous run (views add it to live table counters). */
  baseline(scope: string, name: string): number {
    return this.base.get(scope)?.get(name) ?? 0;
  }

  get(name: string, scope: string = NODE_SCOPE): number {
    return this.snapshot().get(scope)?.get(name) ?? 0;
  }
}

function bump(m: CounterMap, scope: string, name: string, by: number): void {
  let s = m.get(scope);
  if (!s) {
    s = new Map();
    m.set(scope, s);
  }
  s.set(name, (s.get(name) ?? 0) + by);
}
