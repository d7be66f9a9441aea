// The daemon's view of its peers: configuration joined with their data-plane index.
// Indices are stable for the life of the process (a removed peer's index is not reused until
// its keypairs are gone), so the worker's tables never point at the wrong peer.

import type { AllowedPeer, Prefix } from "../config/schema.ts";
import { MAX_PEERS } from "../dataplane/tables.ts";

export interface Endpoint {
  ip: number;
  port: number;
}

export interface PeerRecord {
  index: number;
  /** vine peer id, or "wg:<base64 key>" for a plain WireGuard peer */
  id: string;
  name: string;
  x25519: Uint8Array;
  keyHex: string;
  ed25519: Uint8Array | null;
  prefix: Prefix;
  relayCapable: boolean;
  wireguardOnly: boolean;
  staticEndpoint: Endpoint | null;
  staticEndpointText: string | null;
  bootstrap: boolean;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

export function peerIdOf(p: AllowedPeer): string {
  return p.peerId ?? `wg:${Buffer.from(p.x25519Public).toString("base64")}`;
}

export class PeerSet {
  private readonly byIndex: (PeerRecord | undefined)[] = [];
  private readonly byKey = new Map<string, PeerRecord>();
  private readonly byId = new Map<string, PeerRecord>();
  private readonly retired: number[] = [];

  get size(): number {
    return this.byKey.size;
  }

  all(): PeerRecord[] {
    return [...this.byKey.values()].sort((a, b) => a.index - b.index);
  }

  get(index: number): PeerRecord | undefined {
    return this.byIndex[index];
  }

  byX25519(key: Uint8Array): PeerRecord | undefined {
    return this.byKey.get(hex(key));
  }

  byPeerId(id: string): PeerRecord | undefined {
    return this.byId.get(id);
  }

  find(nameOrId: string): PeerRecord | undefined {
    return this.byId.get(nameOrId) ?? this.all().find((p) => p.name === nameOrId);
  }

  add(p: Omit<PeerRecord, "index" | "keyHex">): PeerRecord {
    const keyHex = hex(p.x25519);
    const existing = this.byKey.get(keyHex);
    if (existing) return existing;
    let index = this.byIndex.findIndex((r, i) => r === undefined && !this.retired.includes(i));
    if (index < 0) index = this.byIndex.length;
    if (index >= MAX_PEERS) throw new Error(`too many peers: vine supports at most ${MAX_PEERS}`);
    const rec: PeerRecord = { ...p, index, keyHex };
    this.byIndex[index] = rec;
    this.byKey.set(keyHex, rec);
    this.byId.set(rec.id, rec);
    return rec;
  }

  remove(rec: PeerRecord): void {
    this.byIndex[rec.index] = undefined;
    this.byKey.delete(rec.keyHex);
    this.byId.delete(rec.id);
    this.retired.push(rec.index);
  }

  /** A retired index may be reused once the caller has cleared its keypairs. */
  reuse(index: number): void {
    const i = this.retired.indexOf(index);
    if (i >= 0) this.retired.splice(i, 1);
  }
}
