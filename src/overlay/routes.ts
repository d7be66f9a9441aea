// Longest-prefix-match route table: overlay destination address → owning peer index.
//
// Lookups happen once per outbound packet, so they must not allocate: one Map per prefix length
// (keyed by the masked address), probed from the longest length present to the shortest.

import { maskOf } from "./prefix.ts";

export interface RouteEntry {
  addr: number; // network address, u32
  len: number; // 0..32
  peer: number; // peer index in the data-plane tables
}

export class RouteTable {
  private byLen: Map<number, number>[] = [];
  private lengths: Int32Array = new Int32Array(0); // lengths present, longest first
  private masks: Uint32Array = new Uint32Array(0);
  private count = 0;
  // The last address looked up and its answer: a flow sends to one address again and again, and a
  // hit touches two fields instead of a Map per prefix length (cold caches make that count, see
  // book architecture.md "Latency on an idle tunnel"). Reset whenever the routes change.
  private lastIp = NaN; // equal to no address
  private lastPeer = -1;

  constructor(entries: readonly RouteEntry[] = []) {
    this.replace(entries);
  }

  /** Replace every route at once (routes change on reload, never per packet). */
  replace(entries: readonly RouteEntry[]): void {
    this.byLen = [];
    const present = new Set<number>();
    for (const e of entries) {
      const mask = maskOf(e.len);
      const key = (e.addr & mask) >>> 0;
      (this.byLen[e.len] ??= new Map()).set(key, e.peer);
      present.add(e.len);
    }
    const lens = [...present].sort((a, b) => b - a);
    this.lengths = Int32Array.from(lens);
    this.masks = Uint32Array.from(lens.map((l) => maskOf(l)));
    this.count = entries.length;
    this.lastIp = NaN;
  }

  get size(): number {
    return this.count;
  }

  /** Peer index owning `ip` (u32), or -1 when no prefix covers it. */
  lookup(ip: number): number {
    if (ip === this.lastIp) return this.lastPeer;
    let peer = -1;
    const lens = this.lengths;
    for (let i = 0; i < lens.length; i++) {
      const p = this.byLen[lens[i]!]!.get((ip & this.masks[i]!) >>> 0);
      if (p !== undefined) {
        peer = p;
        break;
      }
    }
    this.lastIp = ip;
    this.lastPeer = peer;
    return peer;
  }
}
