// The TAI64N timestamp each handshake initiation carries, never lower than the last one sent to the
// same peer.
//
// A WireGuard responder (vine's, wireguard-go, the Linux module) accepts an initiation only if its
// timestamp is greater than the greatest it has seen from that peer (`handshake_replayed`). If this
// host's wall clock steps back — an NTP correction, an RTC reset — its initiations would carry
// timestamps below those its peers already saw, and every initiation it makes would be refused until
// the clock caught up (an hour for an hour's step). So the timestamp sent is max(now, last + 1 step),
// with `last` kept per peer key in the state database, so that it holds across restarts too. Only the
// sender changes: responders, stock WireGuard's included, see an ordinary increasing timestamp.

import { TAI64N_SIZE, tai64n, tai64nAfter, tai64nCompare, tai64nToMs } from "../crypto/tai64n.ts";

/** Where the last timestamp sent to each peer lives between runs (the state database). */
export interface TimestampStore {
  load(peerKey: Uint8Array): Uint8Array | null;
  save(peerKey: Uint8Array, timestamp: Uint8Array): void;
}

export interface NextTimestamp {
  timestamp: Uint8Array;
  /** How far (ms) the wall clock reads behind the last timestamp sent to this peer; 0 when it does not. */
  behindMs: number;
}

export class InitiationTimestamps {
  private readonly last = new Map<string, Uint8Array>();

  constructor(
    private readonly store: TimestampStore | null = null,
    private readonly wallNow: () => number = Date.now,
  ) {}

  /** The timestamp for a new initiation to `peerKey` (X25519 public key), recorded as the last one sent. */
  next(peerKey: Uint8Array): NextTimestamp {
    const key = Buffer.from(peerKey).toString("base64");
    let last = this.last.get(key) ?? null;
    if (last === null && this.store) {
      const stored = this.store.load(peerKey);
      if (stored && stored.length === TAI64N_SIZE) last = stored;
    }
    const nowMs = this.wallNow();
    let timestamp = tai64n(nowMs);
    let behindMs = 0;
    if (last && tai64nCompare(timestamp, last) <= 0) {
      behindMs = Math.max(0, tai64nToMs(last) - nowMs);
      timestamp = tai64nAfter(last);
    }
    this.last.set(key, timestamp);
    this.store?.save(peerKey, timestamp);
    return { timestamp, behindMs };
  }
}
