// The WireGuard handshake: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s with WireGuard's message layouts
// (whitepaper §5.4.2–5.4.5). Runs on the main thread; allocation is fine here.
//
// Initiation (148 bytes): type 1 | reserved 3 | sender 4 | ephemeral 32 | static 32+16 | timestamp 12+16 | mac1 16 | mac2 16
// Response   (92 bytes):  type 2 | reserved 3 | sender 4 | receiver 4 | ephemeral 32 | empty 0+16 | mac1 16 | mac2 16

import { concat, hash, kdf, mac } from "../crypto/blake2s.ts";
import { createAead, type Aead } from "../crypto/aead.ts";
import { generateX25519KeyPair, x25519, type X25519KeyPair } from "../crypto/x25519.ts";
import { CONSTRUCTION, IDENTIFIER, INITIATION_SIZE, LABEL_MAC1, RESPONSE_SIZE } from "./constants.ts";
import { tai64n } from "./tai64n.ts";

const enc = new TextEncoder();
const CHAIN0 = hash(enc.encode(CONSTRUCTION));
const HASH0 = hash(CHAIN0, enc.encode(IDENTIFIER));
const EMPTY = new Uint8Array(0);

export interface StaticKeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

export interface SessionKeys {
  sendKey: Uint8Array;
  recvKey: Uint8Array;
  localIndex: number;
  remoteIndex: number;
  isInitiator: boolean;
}

export interface InitiatorPending {
  peerPublic: Uint8Array;
  localIndex: number;
  chain: Uint8Array;
  hash: Uint8Array;
  ephemeral: X25519KeyPair;
  /** mac1 of the initiation we sent: the associated data of a cookie reply to it. */
  mac1: Uint8Array;
}

export interface ResponderState {
  peerPublic: Uint8Array;
  remoteIndex: number;
  chain: Uint8Array;
  hash: Uint8Array;
  peerEphemeral: Uint8Array;
}

/** mac1 key for messages sent TO the holder of `publicKey`: HASH(LABEL_MAC1 ‖ publicKey). */
export function mac1Key(publicKey: Uint8Array): Uint8Array {
  return hash(enc.encode(LABEL_MAC1), publicKey);
}

/** Write mac1 (and mac2 when a cookie is known) into the last 32 bytes of a handshake message. */
export function writeMacs(msg: Uint8Array, key: Uint8Array, cookie: Uint8Array | null): void {
  const m1 = msg.length - 32;
  msg.set(mac(key, msg.subarray(0, m1)), m1);
  if (cookie) msg.set(mac(cookie, msg.subarray(0, m1 + 16)), m1 + 16);
  else msg.fill(0, m1 + 16);
}

export function checkMac1(msg: Uint8Array, key: Uint8Array): boolean {
  const m1 = msg.length - 32;
  return equal(mac(key, msg.subarray(0, m1)), msg.subarray(m1, m1 + 16));
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** Test hooks: fixed ephemerals and clock make a transcript reproducible. */
export interface HandshakeHooks {
  ephemeral?: () => X25519KeyPair;
  now?: () => number;
  aead?: Aead;
  dh?: (priv: Uint8Array, pub: Uint8Array) => Uint8Array | null;
}

export class Handshaker {
  private readonly aead: Aead;
  private readonly dh: (priv: Uint8Array, pub: Uint8Array) => Uint8Array | null;
  private readonly myMac1Key: Uint8Array;
  /** HASH(HASH0 ‖ own public key): the responder's starting hash, computed once. */
  private readonly responderHash0: Uint8Array;

  constructor(
    private readonly local: StaticKeyPair,
    private readonly hooks: HandshakeHooks = {},
  ) {
    this.aead = hooks.aead ?? createAead();
    this.dh = hooks.dh ?? x25519;
    this.myMac1Key = mac1Key(local.publicKey);
    this.responderHash0 = hash(HASH0, local.publicKey);
  }

  private ephemeral(): X25519KeyPair {
    return this.hooks.ephemeral ? this.hooks.ephemeral() : generateX25519KeyPair();
  }

  createInitiation(peerPublic: Uint8Array, psk: Uint8Array, localIndex: number, cookie?: Uint8Array | null): { message: Uint8Array; pending: InitiatorPending } {
    void psk; // IKpsk2 mixes the PSK in the response; kept in the signature for symmetry
    const msg = new Uint8Array(INITIATION_SIZE);
    const dv = new DataView(msg.buffer);
    msg[0] = 1;
    dv.setUint32(4, localIndex >>> 0, true);
    let c = CHAIN0;
    let h = hash(HASH0, peerPublic);
    const e = this.ephemeral();
    msg.set(e.publicKey, 8);
    [c] = kdf(1, c, e.publicKey) as [Uint8Array];
    h = hash(h, e.publicKey);
    const es = this.dh(e.privateKey, peerPublic);
    const ss = this.dh(this.local.privateKey, peerPublic);
    if (!es || !ss) throw new Error("invalid peer public key (low order)");
    let k: Uint8Array;
    [c, k] = kdf(2, c, es) as [Uint8Array, Uint8Array];
    const encStatic = this.aead.sealAd(k, 0, this.local.publicKey, h);
    msg.set(encStatic, 40);
    h = hash(h, encStatic);
    [c, k] = kdf(2, c, ss) as [Uint8Array, Uint8Array];
    const ts = tai64n(this.hooks.now ? this.hooks.now() : Date.now());
    const encTs = this.aead.sealAd(k, 0, ts, h);
    msg.set(encTs, 88);
    h = hash(h, encTs);
    writeMacs(msg, mac1Key(peerPublic), cookie ?? null);
    return { message: msg, pending: { peerPublic, localIndex: localIndex >>> 0, chain: c, hash: h, ephemeral: e, mac1: msg.slice(116, 132) } };
  }

  /** Responder: authenticate an initiation (macs already checked by the caller). */
  consumeInitiation(msg: Uint8Array): { peerPublic: Uint8Array; timestamp: Uint8Array; remoteIndex: number; state: ResponderState } | null {
    if (msg.length !== INITIATION_SIZE || msg[0] !== 1 || msg[1] !== 0 || msg[2] !== 0 || msg[3] !== 0) return null;
    const dv = new DataView(msg.buffer, msg.byteOffset, msg.length);
    const remoteIndex = dv.getUint32(4, true);
    const eph = msg.slice(8, 40);
    let c = CHAIN0;
    let h = this.responderHash0;
    [c] = kdf(1, c, eph) as [Uint8Array];
    h = hash(h, eph);
    const es = this.dh(this.local.privateKey, eph);
    if (!es) return null;
    let k: Uint8Array;
    [c, k] = kdf(2, c, es) as [Uint8Array, Uint8Array];
    const encStatic = msg.subarray(40, 88);
    const peerPublic = this.aead.openAd(k, 0, encStatic, h);
    if (!peerPublic || peerPublic.length !== 32) return null;
    h = hash(h, encStatic);
    const ss = this.dh(this.local.privateKey, peerPublic);
    if (!ss) return null;
    [c, k] = kdf(2, c, ss) as [Uint8Array, Uint8Array];
    const encTs = msg.subarray(88, 116);
    const timestamp = this.aead.openAd(k, 0, encTs, h);
    if (!timestamp || timestamp.length !== 12) return null;
    h = hash(h, encTs);
    return { peerPublic: new Uint8Array(peerPublic), timestamp: new Uint8Array(timestamp), remoteIndex, state: { peerPublic: new Uint8Array(peerPublic), remoteIndex, chain: c, hash: h, peerEphemeral: eph } };
  }

  createResponse(state: ResponderState, psk: Uint8Array, localIndex: number, cookie?: Uint8Array | null): { message: Uint8Array; keys: SessionKeys } {
    const msg = new Uint8Array(RESPONSE_SIZE);
    const dv = new DataView(msg.buffer);
    msg[0] = 2;
    dv.setUint32(4, localIndex >>> 0, true);
    dv.setUint32(8, state.remoteIndex >>> 0, true);
    const e = this.ephemeral();
    msg.set(e.publicKey, 12);
    let c = state.chain;
    let h = state.hash;
    [c] = kdf(1, c, e.publicKey) as [Uint8Array];
    h = hash(h, e.publicKey);
    const ee = this.dh(e.privateKey, state.peerEphemeral);
    const se = this.dh(e.privateKey, state.peerPublic);
    if (!ee || !se) throw new Error("invalid peer key (low order)");
    [c] = kdf(1, c, ee) as [Uint8Array];
    [c] = kdf(1, c, se) as [Uint8Array];
    let tau: Uint8Array;
    let k: Uint8Array;
    [c, tau, k] = kdf(3, c, psk) as [Uint8Array, Uint8Array, Uint8Array];
    h = hash(h, tau);
    const empty = this.aead.sealAd(k, 0, EMPTY, h);
    msg.set(empty, 44);
    writeMacs(msg, mac1Key(state.peerPublic), cookie ?? null);
    const [t1, t2] = kdf(2, c, EMPTY) as [Uint8Array, Uint8Array];
    return { message: msg, keys: { sendKey: t2, recvKey: t1, localIndex: localIndex >>> 0, remoteIndex: state.remoteIndex, isInitiator: false } };
  }

  consumeResponse(pending: InitiatorPending, psk: Uint8Array, msg: Uint8Array): SessionKeys | null {
    if (msg.length !== RESPONSE_SIZE || msg[0] !== 2 || msg[1] !== 0 || msg[2] !== 0 || msg[3] !== 0) return null;
    const dv = new DataView(msg.buffer, msg.byteOffset, msg.length);
    if (dv.getUint32(8, true) !== pending.localIndex) return null;
    const remoteIndex = dv.getUint32(4, true);
    const eph = msg.slice(12, 44);
    let c = pending.chain;
    let h = pending.hash;
    [c] = kdf(1, c, eph) as [Uint8Array];
    h = hash(h, eph);
    const ee = this.dh(pending.ephemeral.privateKey, eph);
    const se = this.dh(this.local.privateKey, eph);
    if (!ee || !se) return null;
    [c] = kdf(1, c, ee) as [Uint8Array];
    [c] = kdf(1, c, se) as [Uint8Array];
    let tau: Uint8Array;
    let k: Uint8Array;
    [c, tau, k] = kdf(3, c, psk) as [Uint8Array, Uint8Array, Uint8Array];
    h = hash(h, tau);
    if (this.aead.openAd(k, 0, msg.subarray(44, 60), h) === null) return null;
    const [t1, t2] = kdf(2, c, EMPTY) as [Uint8Array, Uint8Array];
    return { sendKey: t1, recvKey: t2, localIndex: pending.localIndex, remoteIndex, isInitiator: true };
  }

  /** mac1 check for messages addressed to this host. */
  checkMac1(msg: Uint8Array): boolean {
    return checkMac1(msg, this.myMac1Key);
  }
}

export { concat };
