// WireGuard cookies (whitepaper §5.4.7, wireguard-go cookie.go): under load a responder answers
// handshake messages with a cookie reply instead of doing Diffie-Hellman; the sender proves it owns
// its source address by putting mac2 = MAC(cookie, message[..mac2]) on its next attempt.
//
//   cookie  = MAC(secret, source address bytes)         secret: 32 random bytes, renewed every 2 min
//   reply   = type 3 | reserved 3 | receiver 4 | nonce 24 | XChaCha20-Poly1305(key, nonce, cookie, ad = mac1 of the message)
//   key     = HASH(LABEL_COOKIE ‖ public key of the responder)
//
// The caller decides when it is "under load" and what the source address bytes are (vine uses the
// IP bytes followed by the port, big endian); times are the caller's clock in ms, Date.now() if absent.

import { randomBytes } from "node:crypto";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { hash, mac } from "../crypto/blake2s.ts";
import { COOKIE_REPLY_SIZE, COOKIE_SECRET_MAX_AGE, INITIATION_SIZE, LABEL_COOKIE, REKEY_TIMEOUT, RESPONSE_SIZE } from "./constants.ts";
import { checkMac1, equal, mac1Key } from "./handshake.ts";
import { decodeCookieReply, encodeCookieReply } from "./messages.ts";

const enc = new TextEncoder();
const MAC_SIZE = 16;

/** HASH(LABEL_COOKIE ‖ public key): the key that seals cookies sent by the holder of `publicKey`. */
export function cookieKey(publicKey: Uint8Array): Uint8Array {
  return hash(enc.encode(LABEL_COOKIE), publicKey);
}

function isHandshakeSize(msg: Uint8Array): boolean {
  return msg.length === INITIATION_SIZE || msg.length === RESPONSE_SIZE;
}

/** Responder side: checks macs and makes cookie replies. */
export class CookieChecker {
  private secret = new Uint8Array(randomBytes(32));
  private secretAt = -Infinity;
  private readonly myMac1Key: Uint8Array;
  private readonly myCookieKey: Uint8Array;

  constructor(localPublic: Uint8Array) {
    this.myMac1Key = mac1Key(localPublic);
    this.myCookieKey = cookieKey(localPublic);
  }

  /** mac1 of a handshake message addressed to us. */
  checkMac1(msg: Uint8Array): boolean {
    return isHandshakeSize(msg) && checkMac1(msg, this.myMac1Key);
  }

  private cookieFor(srcAddr: Uint8Array, now: number): Uint8Array {
    if (now - this.secretAt >= COOKIE_SECRET_MAX_AGE) {
      this.secret = new Uint8Array(randomBytes(32));
      this.secretAt = now;
    }
    return mac(this.secret, srcAddr);
  }

  /** mac2: does the sender hold a current cookie for this source address? */
  checkMac2(msg: Uint8Array, srcAddr: Uint8Array, now: number = Date.now()): boolean {
    if (!isHandshakeSize(msg)) return false;
    const m2 = msg.length - MAC_SIZE;
    return equal(mac(this.cookieFor(srcAddr, now), msg.subarray(0, m2)), msg.subarray(m2));
  }

  /** A 64-byte cookie reply to `msg` (whose sender index is `receiver`), bound to the source address. */
  createReply(msg: Uint8Array, srcAddr: Uint8Array, receiver: number, now: number = Date.now()): Uint8Array {
    if (!isHandshakeSize(msg)) throw new RangeError("cookie reply: not a handshake message");
    const m1 = msg.length - 2 * MAC_SIZE;
    const nonce = new Uint8Array(randomBytes(24));
    const sealed = xchacha20poly1305(this.myCookieKey, nonce, msg.slice(m1, m1 + MAC_SIZE)).encrypt(this.cookieFor(srcAddr, now));
    return encodeCookieReply({ receiver: receiver >>> 0, nonce, encryptedCookie: sealed }, new Uint8Array(COOKIE_REPLY_SIZE));
  }
}

/** Initiator side: remembers the cookie a responder gave us, for mac2. */
export class CookieJar {
  private cookieValue: Uint8Array | null = null;
  private receivedAt = 0;
  private readonly peerCookieKey: Uint8Array;

  constructor(peerPublic: Uint8Array) {
    this.peerCookieKey = cookieKey(peerPublic);
  }

  /** Decrypt a cookie reply to a message whose mac1 was `sentMac1`; false when it does not open. */
  consumeReply(reply: Uint8Array, sentMac1: Uint8Array, now: number = Date.now()): boolean {
    const r = decodeCookieReply(reply);
    if (!r || sentMac1.length !== MAC_SIZE) return false;
    try {
      const cookie = xchacha20poly1305(this.peerCookieKey, r.nonce.slice(), sentMac1).decrypt(r.encryptedCookie.slice());
      if (cookie.length !== MAC_SIZE) return false;
      this.cookieValue = cookie;
      this.receivedAt = now;
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The cookie for mac2 while it is fresh. It expires with the responder's secret (120 s); we stop
   * using it REKEY_TIMEOUT earlier so a retransmission never carries a cookie the responder has
   * just forgotten.
   */
  cookie(now: number = Date.now()): Uint8Array | null {
    if (!this.cookieValue || now - this.receivedAt >= COOKIE_SECRET_MAX_AGE - REKEY_TIMEOUT) return null;
    return this.cookieValue;
  }
}
