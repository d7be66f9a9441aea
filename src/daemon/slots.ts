// Keypair slot allocation (main thread). A slot is free when its shared state is FREE and main has
// not reserved it for a handshake in flight. The local index sent on the wire carries the slot in
// its low bits (so the worker finds a keypair without a map) and random high bits (so indices are
// not guessable and a stale index from a previous keypair in the same slot does not match).

import { randomBytes } from "node:crypto";
import {
  K_GENERATION,
  K_LOCAL_INDEX,
  K_PEER,
  K_REMOTE_INDEX,
  K_SEND_COUNTER,
  K_SUITE,
  K_STATE,
  K_STRIDE,
  KEY_BYTES,
  KS_FREE,
  MAX_KEYPAIRS,
  SLOT_BITS,
  type TableViews,
} from "../dataplane/tables.ts";

export class SlotAllocator {
  private readonly reserved = new Uint8Array(MAX_KEYPAIRS);
  private cursor = 0;

  constructor(private readonly v: TableViews) {}

  /** Reserve a free slot and give it a fresh local index; null when the table is full. */
  reserve(): { slot: number; localIndex: number } | null {
    for (let n = 0; n < MAX_KEYPAIRS; n++) {
      const slot = this.cursor;
      this.cursor = (this.cursor + 1) % MAX_KEYPAIRS;
      if (this.reserved[slot] || Atomics.load(this.v.keypairs, slot * K_STRIDE + K_STATE) !== KS_FREE) continue;
      this.reserved[slot] = 1;
      const high = randomBytes(4).readUInt32LE(0) >>> SLOT_BITS;
      return { slot, localIndex: ((high << SLOT_BITS) | slot) >>> 0 };
    }
    return null;
  }

  release(slot: number): void {
    this.reserved[slot] = 0;
  }

  /**
   * Write keys and indices into a reserved slot, then publish it with `state`. The generation bump
   * tells the worker to start a fresh replay window for this slot.
   */
  publish(slot: number, peer: number, localIndex: number, remoteIndex: number, sendKey: Uint8Array, recvKey: Uint8Array, state: number, suite = 0): void {
    const k = slot * K_STRIDE;
    const kp = this.v.keypairs;
    Atomics.store(kp, k + K_STATE, KS_FREE);
    kp[k + K_PEER] = peer;
    kp[k + K_LOCAL_INDEX] = localIndex | 0;
    kp[k + K_REMOTE_INDEX] = remoteIndex | 0;
    kp[k + K_SEND_COUNTER] = 0;
    kp[k + K_SUITE] = suite;
    this.v.keys.set(sendKey, slot * KEY_BYTES);
    this.v.keys.set(recvKey, slot * KEY_BYTES + 32);
    Atomics.add(kp, k + K_GENERATION, 1);
    Atomics.store(kp, k + K_STATE, state);
    this.reserved[slot] = 0;
  }
}
