// Recently authenticated handshake initiations, by mac1: a responder drops a byte-identical copy
// before any Diffie-Hellman work.
//
// An initiator sends the same initiation (the same bytes) to several paths at once — its direct
// candidates and a relay — so in a mesh a responder receives copies. Each copy used to cost a full
// consumeInitiation (two X25519 operations) before being refused as a replay (its TAI64N timestamp
// is not newer than the one just accepted). mac1 = MAC(HASH("mac1----" ‖ responder key),
// message[0..116]) covers every byte of the initiation but mac2, so once mac1 has verified, an equal
// mac1 means the same initiation (a copy whose mac2 alone differs carries the same timestamp and
// would be refused as a replay anyway).
//
// Dropping a copy never admits anything: the cache only ever turns "process again" into "drop". It
// is fixed-size and direct-mapped (slot = the first 32 bits of mac1, which are pseudorandom), with
// preallocated storage: lookups and inserts allocate nothing. An entry is overwritten by the next
// initiation that maps to its slot; at 1024 slots that is long after a copy could still arrive.

const MAC_SIZE = 16;
export const RECENT_INITIATIONS = 1024;

export class RecentInitiations {
  private readonly macs: Uint8Array;
  private readonly peers: Int32Array; // peer index per slot, -1 empty
  private readonly mask: number;

  constructor(capacity = RECENT_INITIATIONS) {
    if (!Number.isInteger(capacity) || capacity < 1 || (capacity & (capacity - 1)) !== 0) {
      throw new RangeError(`RecentInitiations capacity must be a power of two, not ${capacity}`);
    }
    this.macs = new Uint8Array(capacity * MAC_SIZE);
    this.peers = new Int32Array(capacity).fill(-1);
    this.mask = capacity - 1;
  }

  /** Slot of the mac1 of handshake message `msg` (mac1 sits 32 bytes before its end). */
  private slot(msg: Uint8Array): number {
    const m = msg.length - 2 * MAC_SIZE;
    return ((msg[m]! | (msg[m + 1]! << 8) | (msg[m + 2]! << 16) | (msg[m + 3]! << 24)) >>> 0) & this.mask;
  }

  /**
   * The peer index recorded for an initiation with the same mac1 as `msg`, or -1. Call only after
   * mac1 has verified.
   */
  lookup(msg: Uint8Array): number {
    if (msg.length < 2 * MAC_SIZE) return -1;
    const i = this.slot(msg);
    const peer = this.peers[i]!;
    if (peer < 0) return -1;
    const m = msg.length - 2 * MAC_SIZE;
    const o = i * MAC_SIZE;
    for (let k = 0; k < MAC_SIZE; k++) if (this.macs[o + k] !== msg[m + k]) return -1;
    return peer;
  }

  /** Remember an initiation that authenticated as coming from peer `peerIndex`. */
  add(msg: Uint8Array, peerIndex: number): void {
    if (msg.length < 2 * MAC_SIZE) return;
    const i = this.slot(msg);
    const m = msg.length - 2 * MAC_SIZE;
    const o = i * MAC_SIZE;
    for (let k = 0; k < MAC_SIZE; k++) this.macs[o + k] = msg[m + k]!;
    this.peers[i] = peerIndex;
  }

  /** Forget a removed peer's entries (its index may be given to another peer later). */
  forgetPeer(peerIndex: number): void {
    for (let i = 0; i < this.peers.length; i++) if (this.peers[i] === peerIndex) this.peers[i] = -1;
  }
}
