// What a bootstrap peer keeps: for each admitted peer that registered, the reflexive endpoint it
// saw (the NAT-mapped source of the REGISTER) and the peer's own local candidates.

import type { Endpoint } from "./messages.ts";

interface Entry {
  reflexive: Endpoint;
  locals: Endpoint[];
  at: number;
}

const MAX_ENTRIES = 4096;

export class EndpointRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly opts: { ttlMs: number }) {}

  get size(): number {
    return this.entries.size;
  }

  register(peerKey: Uint8Array, reflexive: Endpoint, locals: Endpoint[], nowMs: number): void {
    const k = Buffer.from(peerKey).toString("hex");
    if (!this.entries.has(k) && this.entries.size >= MAX_ENTRIES) this.expire(nowMs);
    if (!this.entries.has(k) && this.entries.size >= MAX_ENTRIES) return;
    this.entries.set(k, { reflexive, locals: locals.slice(0, 8), at: nowMs });
  }

  /** Candidates for a peer, reflexive first, deduplicated; [] when unknown or expired. */
  lookup(peerKey: Uint8Array, nowMs: number): Endpoint[] {
    const e = this.entries.get(Buffer.from(peerKey).toString("hex"));
    if (!e || nowMs - e.at > this.opts.ttlMs) return [];
    const out: Endpoint[] = [];
    for (const c of [e.reflexive, ...e.locals]) if (!out.some((o) => o.ip === c.ip && o.port === c.port)) out.push(c);
    return out;
  }

  expire(nowMs: number): void {
    for (const [k, e] of this.entries) if (nowMs - e.at > this.opts.ttlMs) this.entries.delete(k);
  }
}
