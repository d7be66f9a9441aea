// Shared session tables: the contract between the control plane (main thread) and the data-plane
// worker. Everything lives in SharedArrayBuffers so that neither side copies per packet.
//
// Ownership rules (why there are no locks):
// * Keypair slots: main writes keys and indices, bumps `generation`, then publishes with an
//   Atomics.store of `state`. The worker resets its replay window when it sees a new generation.
// * Peer path fields (endpoint, via): written by main only; the worker reads them per packet.
// * Peer keypair pointers (current/previous/next): written by the worker only, on commands that
//   main posts (install/expire), and on confirmation of a responder keypair. Main only reads them.
// * Counters: each counter has one writer (the worker, or main for the few it owns); readers
//   tolerate a value that is one packet stale.
// * Send counters: Atomics.add, because main also sends (keepalives, control messages).

export const MAX_PEERS = 1024;
export const MAX_KEYPAIRS = 4096; // slot = localIndex & SLOT_MASK
export const SLOT_BITS = 12;
export const SLOT_MASK = (1 << SLOT_BITS) - 1;

// ---- peer table (Int32 fields)
export const P_STRIDE = 16;
export const P_ACTIVE = 0; // 1 when the peer is configured
export const P_CURRENT = 1; // keypair slot for sending, -1 none
export const P_PREVIOUS = 2; // previous keypair slot (still accepted on receive), -1 none
export const P_NEXT = 3; // responder keypair awaiting its first received packet, -1 none
export const P_EP_IP = 4; // direct endpoint ip (u32 as i32), 0 = none
export const P_EP_PORT = 5; // direct endpoint port, 0 = none
export const P_VIA = 6; // relay peer index when relayed, -1 = direct
export const P_PREFIX = 7; // owned overlay prefix address (u32 as i32)
export const P_PREFIX_LEN = 8; // owned prefix length
export const P_RX_SRC_IP = 9; // source of the last authenticated direct packet
export const P_RX_SRC_PORT = 10;
export const P_RX_VIA = 11; // relay index of the last authenticated relayed packet, -1 none
export const P_WANT_HANDSHAKE = 12; // set by the worker when data waits for a session
export const P_KEY_HASH = 13; // first 4 bytes of the peer's X25519 key (relay lookups)

// ---- per-peer counters (Float64 fields)
export const PC_STRIDE = 16;
export const PC_RX_PACKETS = 0;
export const PC_RX_BYTES = 1;
export const PC_TX_PACKETS = 2;
export const PC_TX_BYTES = 3;
export const PC_RX_DIRECT = 4; // authenticated packets that arrived directly
export const PC_RX_RELAYED = 5; // authenticated packets that arrived through a relay
export const PC_TX_RELAYED = 6;
export const PC_RELAYED_FOR = 7; // packets this node relayed on behalf of the peer (relay role)
export const PC_DROP_SPOOFED = 8;
export const PC_DROP_NO_SESSION = 9;
export const PC_DROP_REPLAY = 10;
export const PC_LAST_RX_MS = 11; // wall-clock ms of the last authenticated packet
export const PC_LAST_TX_MS = 12;
export const PC_RELAY_BYTES_FOR = 13;

// ---- node counters (Float64), one writer each; names are the operator-visible counter names
export const NODE_COUNTERS = [
  "rx_packets",
  "rx_bytes",
  "tx_packets",
  "tx_bytes",
  "drop_unknown_route",
  "drop_no_session",
  "drop_spoofed_source",
  "drop_replay",
  "drop_decrypt_failed",
  "drop_unknown_index",
  "drop_malformed",
  "drop_not_ipv4",
  "drop_queue_full",
  "drop_tun_write",
  "drop_udp_send",
  "drop_relay_refused",
  "relay_forwarded_packets",
  "relay_forwarded_bytes",
  "handshake_messages_in",
  "control_messages_in",
  "keepalives_in",
  "tso_superpackets_in",
  "gro_superpackets_out",
  "gro_segments_merged",
  "tun_handover_bulk",
  "tun_handover_light",
] as const;
export type NodeCounterName = (typeof NODE_COUNTERS)[number];
export const NC: Record<NodeCounterName, number> = Object.fromEntries(
  NODE_COUNTERS.map((n, i) => [n, i]),
) as Record<NodeCounterName, number>;

// ---- keypair table
export const K_STRIDE = 8;
export const K_STATE = 0; // 0 free, 1 receive-only (responder, unconfirmed), 2 send+receive
export const K_PEER = 1;
export const K_LOCAL_INDEX = 2;
export const K_REMOTE_INDEX = 3;
export const K_GENERATION = 4;
export const K_SEND_COUNTER = 5; // Atomics.add; a u32 is ample (rekey after 120 s long before 2^32)
export const K_SUITE = 6; // transport suite number (src/crypto/aead.ts SUITES), chosen by the handshake
export const KEY_BYTES = 64; // send key ‖ receive key

export const KS_FREE = 0;
export const KS_RECV_ONLY = 1;
export const KS_ACTIVE = 2;

// ---- relay permissions: which peers this node relays for (set by main from policy)
export const RELAY_SERVICE = 0; // misc[0] = 1 when this node forwards relay envelopes
export const ROUTES_VERSION = 1; // misc[1] bumps when the route table changes
export const WORKER_READY = 2; // misc[2] = 1 once the worker runs its loop
export const HEARTBEAT_TX = 3; // misc[3], misc[4]: bumped by each worker once per loop iteration
export const HEARTBEAT_RX = 4;
// misc[5], misc[6]: each worker's JavaScript heap in use, in KiB, refreshed every 2 s (`vine status`)
export const HEAP_KIB_TX = 5;
export const HEAP_KIB_RX = 6;
// misc[7]: who reads the TUN when there are two workers — 0: the RX worker (light traffic: one thread
// carries both directions, so a reply leaves without waking a second thread), 1: the TX worker (bulk)
export const TUN_SPLIT = 7;
export const MISC_INTS = 8;

/**
 * Node counters live in one region per writer thread (main, TX worker, RX worker), so every counter
 * has exactly one writer; readers sum the regions.
 */
export const NODE_COUNTER_REGIONS = 3;
export type CounterRegion = 0 | 1 | 2;
export const REGION_MAIN: CounterRegion = 0;
export const REGION_TX: CounterRegion = 1;
export const REGION_RX: CounterRegion = 2;

export interface SharedTables {
  peerBuf: SharedArrayBuffer;
  peerCounterBuf: SharedArrayBuffer;
  nodeCounterBuf: SharedArrayBuffer;
  keypairBuf: SharedArrayBuffer;
  keyBuf: SharedArrayBuffer;
  peerKeyBuf: SharedArrayBuffer; // 32-byte X25519 key per peer
  miscBuf: SharedArrayBuffer;
}

export function allocateTables(): SharedTables {
  return {
    peerBuf: new SharedArrayBuffer(MAX_PEERS * P_STRIDE * 4),
    peerCounterBuf: new SharedArrayBuffer(MAX_PEERS * PC_STRIDE * 8),
    nodeCounterBuf: new SharedArrayBuffer(NODE_COUNTER_REGIONS * NODE_COUNTERS.length * 8),
    keypairBuf: new SharedArrayBuffer(MAX_KEYPAIRS * K_STRIDE * 4),
    keyBuf: new SharedArrayBuffer(MAX_KEYPAIRS * KEY_BYTES),
    peerKeyBuf: new SharedArrayBuffer(MAX_PEERS * 32),
    miscBuf: new SharedArrayBuffer(MISC_INTS * 4),
  };
}

/** Typed views over the shared tables; each thread builds its own once. */
export class TableViews {
  readonly peers: Int32Array;
  readonly peerCounters: Float64Array;
  /** All regions; use nodeRegion() to write and nodeCounter()/nodeTotals() to read. */
  readonly node: Float64Array;
  readonly nodeRegions: Float64Array[];
  readonly keypairs: Int32Array;
  readonly keys: Uint8Array;
  readonly peerKeys: Uint8Array;
  readonly misc: Int32Array;
  /** Per-keypair views of the send and receive keys, made on first use (then the packet path allocates nothing). */
  private readonly sendKeys: Uint8Array[] = [];
  private readonly recvKeys: Uint8Array[] = [];

  constructor(readonly shared: SharedTables) {
    this.peers = new Int32Array(shared.peerBuf);
    this.peerCounters = new Float64Array(shared.peerCounterBuf);
    this.node = new Float64Array(shared.nodeCounterBuf);
    this.nodeRegions = [0, 1, 2].map((r) => new Float64Array(shared.nodeCounterBuf, r * NODE_COUNTERS.length * 8, NODE_COUNTERS.length));
    this.keypairs = new Int32Array(shared.keypairBuf);
    this.keys = new Uint8Array(shared.keyBuf);
    this.peerKeys = new Uint8Array(shared.peerKeyBuf);
    this.misc = new Int32Array(shared.miscBuf);
  }

  peer(p: number, field: number): number {
    return this.peers[p * P_STRIDE + field]!;
  }
  setPeer(p: number, field: number, v: number): void {
    Atomics.store(this.peers, p * P_STRIDE + field, v | 0);
  }
  peerCounter(p: number, field: number): number {
    return this.peerCounters[p * PC_STRIDE + field]!;
  }
  keypair(k: number, field: number): number {
    return this.keypairs[k * K_STRIDE + field]!;
  }
  sendKey(k: number): Uint8Array {
    return (this.sendKeys[k] ??= this.keys.subarray(k * KEY_BYTES, k * KEY_BYTES + 32));
  }
  recvKey(k: number): Uint8Array {
    return (this.recvKeys[k] ??= this.keys.subarray(k * KEY_BYTES + 32, k * KEY_BYTES + 64));
  }
  /** Next send counter for keypair k (shared by both threads). */
  nextSendCounter(k: number): number {
    return Atomics.add(this.keypairs, k * K_STRIDE + K_SEND_COUNTER, 1) >>> 0;
  }
  /** The counters one thread writes. */
  nodeRegion(region: CounterRegion): Float64Array {
    return this.nodeRegions[region]!;
  }
  nodeCounter(name: NodeCounterName): number {
    const i = NC[name];
    let sum = 0;
    for (const r of this.nodeRegions) sum += r[i]!;
    return sum;
  }
}

/** Messages main → worker (posted, then the worker is woken through its eventfd). */
export type WorkerCommand =
  | { op: "install"; peer: number; slot: number; role: "initiator" | "responder" }
  | { op: "expire"; slot: number }
  | { op: "routes"; routes: { addr: number; len: number; peer: number }[] }
  | { op: "flush"; peer: number } // a session is ready: send what waits in the queue
  | { op: "discard"; peer: number } // the handshake gave up: drop the queue (counted no_session)
  | { op: "stop" };

/**
 * Which commands go to which data-plane thread: keypair pointers belong to RX; everything else goes to
 * both, since both read the TUN (src/dataplane/loop.ts) and each routes and keeps its own queue.
 */
export function commandTarget(cmd: WorkerCommand): "tx" | "rx" | "both" {
  return cmd.op === "install" || cmd.op === "expire" ? "rx" : "both";
}

/** Messages worker → main. Bytes are copies (these are rare: handshakes and control). */
export type WorkerEvent =
  | { ev: "ready"; warmup?: { packets: number; ms: number } }
  | { ev: "handshake"; data: Uint8Array; ip: number; port: number; via: number }
  | { ev: "control"; peer: number; data: Uint8Array; ip: number; port: number; via: number }
  | { ev: "relay-refused"; from: number; dest: Uint8Array; reason: number }
  | { ev: "need-session"; peer: number }
  | { ev: "confirmed"; peer: number; slot: number }
  | { ev: "rotated"; peer: number } // a new keypair is current: the TX side may send what waits
  | { ev: "stopped" }
  | { ev: "error"; message: string };
