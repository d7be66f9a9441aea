// What a bootstrap peer keeps: for each peer that registered over its session, the reflexive endpoint
// (the UDP source the REGISTER arrived from, i.e. the NAT mapping) and the peer's own local candidates.
// Entries live ttlMs after their last registration. Only admitted peers can register (they need a
// session), and the map is bounded anyway: when full, the least recently registered entry goes.

import { MAX_ENDPOINTS, usableEndpoints, type Endpoint } from "./messages.ts";

export const DEFAULT_REGISTRY_MAX_ENTRIES = 4096;

interface Entry {
  reflexive: Endpoint;
  locals: Endpoint[];
  at: number;
}

export class EndpointRegistry {
  private readonly entries = new Map<string, Entry>(); // insertion order = registration order
  private readonly ttlMs: number;
  private readonly maxEntries: number;

  constructor(opts: { ttlMs: number; maxEntries?: number }) {
    this.ttlMs = opts.ttlMs;
    this.maxEntries = Math.max(1, opts.maxEntries ?? DEFAULT_REGISTRY_MAX_ENTRIES);
  }

  /** Number of entries held (expired ones included until expire() or lookup() drops them). */
  get size(): number {
    return this.entries.size;
  }

  /** Record (or refresh) a peer's endpoints. Invalid endpoints are skipped; locals keep at most MAX_ENDPOINTS. */
  register(peerKey: Uint8Array, reflexive: Endpoint, locals: readonly Endpoint[], nowMs: number): void {
    const [refl] = usableEndpoints([reflexive]);
    if (!refl) return; // nothing to reach it by
    const k = keyOf(peerKey);
    this.entries.delete(k); // re-insert at the end: the map stays ordered by last registration
    if (this.entries.size >= this.maxEntries) this.expire(nowMs);
    while (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(k, { reflexive: refl, locals: usableEndpoints(locals).slice(0, MAX_ENDPOINTS), at: nowMs });
  }

  /**
   * An authenticated packet from a registered peer arrived from `reflexive`: its NAT mapping moved
   * (a new lease, a router that restarted or expired the mapping). The entry follows at once, without
   * waiting for the peer's next REGISTER; its lifetime is unchanged (an expired entry stays expired).
   * False when nothing changed: not registered, an unusable endpoint, or the same endpoint.
   */
  follow(peerKey: Uint8Array, reflexive: Endpoint): boolean {
    const e = this.entries.get(keyOf(peerKey));
    if (!e) return false;
    const [refl] = usableEndpoints([reflexive]);
    if (!refl || (refl.ip === e.reflexive.ip && refl.port === e.reflexive.port)) return false;
    e.reflexive = refl;
    return true;
  }

  /** A peer's candidates, reflexive first, deduplicated; [] when unknown or expired (and then dropped). */
  lookup(peerKey: Uint8Array, nowMs: number): Endpoint[] {
    const k = keyOf(peerKey);
    const e = this.entries.get(k);
    if (!e) return [];
    if (nowMs - e.at > this.ttlMs) {
      this.entries.delete(k);
      return [];
    }
    const out: Endpoint[] = [{ ...e.reflexive }];
    for (const c of e.locals) if (!out.some((o) => o.ip === c.ip && o.port === c.port)) out.push({ ...c });
    return out;
  }

  /** Drop every entry not refreshed within ttlMs. */
  expire(nowMs: number): void {
    for (const [k, e] of this.entries) if (nowMs - e.at > this.ttlMs) this.entries.delete(k);
  }
}

function keyOf(peerKey: Uint8Array): string {
  let s = "";
  for (let i = 0; i < peerKey.length; i++) s += peerKey[i]!.toString(16).padStart(2, "0");
  return s;
}
