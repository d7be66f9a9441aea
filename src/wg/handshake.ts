// The WireGuard handshake: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s with WireGuard's message layouts
// (whitepaper §5.4.2–5.4.5, wireguard-go noise-protocol.go). Runs on the main thread; allocation is
// fine here. Layouts and offsets are in messages.ts; the KDF chain is written out in
// book/src/wire-protocol.md.
//
// The consumers (consumeInitiation, consumeResponse) take untrusted bytes and return null on anything
// wrong; they never throw.
//
// Transport suites (vine ↔ vine only): an initiator may offer AES-256-GCM in byte 1 of message 1 (a
// bit mask); the responder answers with its choice in byte 1 of message 2 (a suite number). Both are
// bound into the handshake hash — a non-zero offer starts the hash from HASH(Hi ‖ SUITE_LABEL ‖
// offer), and the choice is mixed in before message 2's ephemeral — so a changed byte makes the
// handshake fail (the static key or the empty payload no longer decrypt): an attacker can drop
// handshakes, never downgrade one. The transport keys of a non-WireGuard suite come from
// KDF2(C, suite) instead of KDF2(C, ε), so no key is ever used with two ciphers. A zero offer is
// exactly WireGuard (stock peers never see another).

import { hash, kdf1, kdf2, kdf3, mac } from "../crypto/blake2s.ts";
import { createAead, type Aead } from "../crypto/aead.ts";
import { tai64n } from "../crypto/tai64n.ts";
import { generateX25519KeyPair, x25519, type X25519KeyPair } from "../crypto/x25519.ts";
import { OFFER_AES_GCM, SUITE_AES_GCM, SUITE_CHACHA } from "../crypto/aead.ts";
import { CONSTRUCTION, IDENTIFIER, LABEL_MAC1 } from "./constants.ts";
import { decodeInitiation, decodeResponse, encodeInitiation, encodeResponse, INITIATION } from "./messages.ts";

const enc = new TextEncoder();
/** Ci = HASH(CONSTRUCTION), Hi = HASH(Ci ‖ IDENTIFIER): the same for every handshake. */
export const INITIAL_CHAIN_KEY = hash(enc.encode(CONSTRUCTION));
export const INITIAL_HASH = hash(INITIAL_CHAIN_KEY, enc.encode(IDENTIFIER));
const EMPTY = new Uint8Array(0);
/** Mixed with a non-zero suite offer into the initial hash. */
export const SUITE_LABEL = "vine transport suites v1";

/** The initial hash for an offer: WireGuard's Hi for 0, HASH(Hi ‖ SUITE_LABEL ‖ offer) otherwise. */
export function initialHashFor(offer: number): Uint8Array {
  return offer === 0 ? INITIAL_HASH : hash(INITIAL_HASH, enc.encode(SUITE_LABEL), Uint8Array.of(offer));
}

/** The suite a responder picks from an offer: AES-256-GCM when offered and accepted, else ChaCha20-Poly1305. */
export function chooseSuite(offer: number, accepted: number): number {
  return (offer & accepted & OFFER_AES_GCM) !== 0 ? SUITE_AES_GCM : SUITE_CHACHA;
}

/** The transport keys' KDF input: empty for WireGuard's suite, the suite number otherwise (keys per suite). */
function suiteInput(suite: number): Uint8Array {
  return suite === SUITE_CHACHA ? EMPTY : Uint8Array.of(suite);
}

/** Is `choice` (byte 1 of message 2) a legal answer to `offer`? */
export function choiceAllowed(offer: number, choice: number): boolean {
  if (choice === SUITE_CHACHA) return true;
  return choice === SUITE_AES_GCM && (offer & OFFER_AES_GCM) !== 0;
}
const MAC_SIZE = 16;

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
  /** Transport suite number (src/crypto/aead.ts SUITES). */
  suite: number;
}

/** What an initiator keeps between sending message 1 and receiving message 2. */
export interface InitiatorPending {
  peerPublic: Uint8Array;
  localIndex: number;
  chain: Uint8Array;
  hash: Uint8Array;
  ephemeral: X25519KeyPair;
  /** mac1 of the initiation we sent: the associated data of a cookie reply to it. */
  mac1: Uint8Array;
  /** The suites we offered (byte 1 of message 1). */
  offer: number;
}

/** What a responder keeps between authenticating message 1 and sending message 2. */
export interface ResponderState {
  peerPublic: Uint8Array;
  remoteIndex: number;
  chain: Uint8Array;
  hash: Uint8Array;
  peerEphemeral: Uint8Array;
  /** The suites the initiator offered. */
  offer: number;
}

/** mac1 key for messages sent TO the holder of `publicKey`: HASH(LABEL_MAC1 ‖ publicKey). */
export function mac1Key(publicKey: Uint8Array): Uint8Array {
  return hash(enc.encode(LABEL_MAC1), publicKey);
}

/**
 * Write mac1 = MAC(mac1Key, msg[..mac1]) and mac2 = MAC(cookie, msg[..mac2]) (zeros without a
 * cookie) into the last 32 bytes of a handshake message.
 */
export function writeMacs(msg: Uint8Array, key: Uint8Array, cookie: Uint8Array | null): void {
  const m1 = msg.length - 2 * MAC_SIZE;
  if (m1 < 0) throw new RangeError("writeMacs: message shorter than its macs");
  msg.set(mac(key, msg.subarray(0, m1)), m1);
  if (cookie) msg.set(mac(cookie, msg.subarray(0, m1 + MAC_SIZE)), m1 + MAC_SIZE);
  else msg.fill(0, m1 + MAC_SIZE);
}

/** Is mac1 of this handshake message right for the receiver whose mac1 key is `key`? */
export function checkMac1(msg: Uint8Array, key: Uint8Array): boolean {
  const m1 = msg.length - 2 * MAC_SIZE;
  if (m1 < 0) return false;
  return equal(mac(key, msg.subarray(0, m1)), msg.subarray(m1, m1 + MAC_SIZE));
}

/** Constant-time equality (for macs and tags). */
export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** Test hooks: fixed ephemerals and clock make a transcript reproducible; aead/dh select backends. */
export interface HandshakeHooks {
  /** Extra suites this host accepts as a responder (offer bits; 0 = WireGuard's only). */
  accept?: number;
  ephemeral?: () => X25519KeyPair;
  now?: () => number;
  aead?: Aead;
  dh?: (priv: Uint8Array, pub: Uint8Array) => Uint8Array | null;
}

export class Handshaker {
  private readonly aead: Aead;
  private readonly dh: (priv: Uint8Array, pub: Uint8Array) => Uint8Array | null;
  private readonly myMac1Key: Uint8Array;
  /** HASH(Hi' ‖ own public key) by offer: the responder's starting hash, computed once per offer. */
  private readonly responderHash0 = new Map<number, Uint8Array>();

  constructor(
    private readonly local: StaticKeyPair,
    private readonly hooks: HandshakeHooks = {},
  ) {
    this.aead = hooks.aead ?? createAead();
    this.dh = hooks.dh ?? x25519;
    this.myMac1Key = mac1Key(local.publicKey);
    this.responderHash0.set(0, hash(INITIAL_HASH, local.publicKey));
    this.responderHash0.set(OFFER_AES_GCM, hash(initialHashFor(OFFER_AES_GCM), local.publicKey));
  }

  private ephemeral(): X25519KeyPair {
    return this.hooks.ephemeral ? this.hooks.ephemeral() : generateX25519KeyPair();
  }

  /**
   * Initiator: message 1 to `peerPublic`. Throws only for a peer key that is low order (a
   * configuration error, not an attack: the key comes from our own config).
   */
  createInitiation(
    peerPublic: Uint8Array,
    psk: Uint8Array,
    localIndex: number,
    cookie?: Uint8Array | null,
    offer = 0,
    /** The TAI64N timestamp to send (see InitiationTimestamps); default: the clock now. */
    timestamp?: Uint8Array,
  ): { message: Uint8Array; pending: InitiatorPending } {
    void psk; // IKpsk2 mixes the PSK in only at message 2; kept in the signature for symmetry
    let c = INITIAL_CHAIN_KEY;
    let h = hash(initialHashFor(offer), peerPublic);
    const e = this.ephemeral();
    c = kdf1(c, e.publicKey);
    h = hash(h, e.publicKey);
    const es = this.dh(e.privateKey, peerPublic);
    const ss = this.dh(this.local.privateKey, peerPublic);
    if (!es || !ss) throw new Error("invalid peer public key (low order)");
    let k: Uint8Array;
    [c, k] = kdf2(c, es);
    const encryptedStatic = this.aead.sealAd(k, 0, this.local.publicKey, h);
    h = hash(h, encryptedStatic);
    [c, k] = kdf2(c, ss);
    const encryptedTimestamp = this.aead.sealAd(k, 0, timestamp ?? tai64n(this.hooks.now ? this.hooks.now() : Date.now()), h);
    h = hash(h, encryptedTimestamp);
    const msg = encodeInitiation({ suites: offer, sender: localIndex >>> 0, ephemeral: e.publicKey, encryptedStatic, encryptedTimestamp });
    writeMacs(msg, mac1Key(peerPublic), cookie ?? null);
    const mac1 = msg.slice(INITIATION.mac1, INITIATION.mac2);
    return { message: msg, pending: { peerPublic, localIndex: localIndex >>> 0, chain: c, hash: h, ephemeral: e, mac1, offer } };
  }

  /** Responder: authenticate message 1 (macs already checked by the caller); null if it does not. */
  consumeInitiation(msg: Uint8Array): { peerPublic: Uint8Array; timestamp: Uint8Array; remoteIndex: number; state: ResponderState } | null {
    const m = decodeInitiation(msg);
    if (!m) return null;
    const offer = m.suites ?? 0;
    let h0 = this.responderHash0.get(offer);
    if (h0 === undefined) return null; // messageType admits only the offers we know
    const eph = m.ephemeral.slice();
    let c = kdf1(INITIAL_CHAIN_KEY, eph);
    let h = hash(h0, eph);
    const es = this.dh(this.local.privateKey, eph);
    if (!es) return null;
    let k: Uint8Array;
    [c, k] = kdf2(c, es);
    const peerPublic = this.aead.openAd(k, 0, m.encryptedStatic, h);
    if (!peerPublic || peerPublic.length !== 32) return null;
    h = hash(h, m.encryptedStatic);
    const ss = this.dh(this.local.privateKey, peerPublic);
    if (!ss) return null;
    [c, k] = kdf2(c, ss);
    const timestamp = this.aead.openAd(k, 0, m.encryptedTimestamp, h);
    if (!timestamp || timestamp.length !== 12) return null;
    h = hash(h, m.encryptedTimestamp);
    const peer = new Uint8Array(peerPublic);
    return {
      peerPublic: peer,
      timestamp: new Uint8Array(timestamp),
      remoteIndex: m.sender,
      state: { peerPublic: peer, remoteIndex: m.sender, chain: c, hash: h, peerEphemeral: eph, offer },
    };
  }

  /**
   * Responder: message 2 and the session keys. The responder must not send data with these keys
   * until the initiator's first transport message arrives (key confirmation).
   */
  createResponse(state: ResponderState, psk: Uint8Array, localIndex: number, cookie?: Uint8Array | null): { message: Uint8Array; keys: SessionKeys } {
    const suite = chooseSuite(state.offer, this.hooks.accept ?? 0);
    const e = this.ephemeral();
    let c = kdf1(state.chain, e.publicKey);
    let h = state.offer === 0 ? state.hash : hash(state.hash, Uint8Array.of(suite));
    h = hash(h, e.publicKey);
    const ee = this.dh(e.privateKey, state.peerEphemeral);
    const se = this.dh(e.privateKey, state.peerPublic);
    if (!ee || !se) throw new Error("invalid peer key (low order)"); // consumeInitiation already refused these
    c = kdf1(c, ee);
    c = kdf1(c, se);
    const [c2, tau, k] = kdf3(c, psk);
    h = hash(h, tau);
    const encryptedEmpty = this.aead.sealAd(k, 0, EMPTY, h);
    const msg = encodeResponse({ suite, sender: localIndex >>> 0, receiver: state.remoteIndex, ephemeral: e.publicKey, encryptedEmpty });
    writeMacs(msg, mac1Key(state.peerPublic), cookie ?? null);
    const [t1, t2] = kdf2(c2, suiteInput(suite));
    return { message: msg, keys: { sendKey: t2, recvKey: t1, localIndex: localIndex >>> 0, remoteIndex: state.remoteIndex, isInitiator: false, suite } };
  }

  /** Initiator: message 2 → session keys, or null (wrong receiver, bad key, wrong PSK, garbage). */
  consumeResponse(pending: InitiatorPending, psk: Uint8Array, msg: Uint8Array): SessionKeys | null {
    const m = decodeResponse(msg);
    if (!m || m.receiver !== pending.localIndex) return null;
    const suite = m.suite ?? 0;
    if (!choiceAllowed(pending.offer, suite)) return null;
    let c = kdf1(pending.chain, m.ephemeral);
    let h = pending.offer === 0 ? pending.hash : hash(pending.hash, Uint8Array.of(suite));
    h = hash(h, m.ephemeral);
    const ee = this.dh(pending.ephemeral.privateKey, m.ephemeral);
    const se = this.dh(this.local.privateKey, m.ephemeral);
    if (!ee || !se) return null;
    c = kdf1(c, ee);
    c = kdf1(c, se);
    const [c2, tau, k] = kdf3(c, psk);
    h = hash(h, tau);
    if (this.aead.openAd(k, 0, m.encryptedEmpty, h) === null) return null;
    const [t1, t2] = kdf2(c2, suiteInput(suite));
    return { sendKey: t1, recvKey: t2, localIndex: pending.localIndex, remoteIndex: m.sender, isInitiator: true, suite };
  }

  /** mac1 check for messages addressed to this host. */
  checkMac1(msg: Uint8Array): boolean {
    return checkMac1(msg, this.myMac1Key);
  }
}

export { concat } from "../crypto/blake2s.ts";
