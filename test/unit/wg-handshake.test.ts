// Noise IKpsk2 as WireGuard does it. A fixed transcript (fixed statics, ephemerals, timestamp,
// indices, PSK) is pinned as hex; the pins come from the independent Python implementation in
// test/e2e/wg-interop/reference-transcript.py, and the same transcript is reproduced with the noble
// backends. Then the state machines are exercised in both roles, with wrong PSKs and keys.

import { describe, expect, test } from "bun:test";
import { createAead, OFFER_AES_GCM, SUITE_AES_GCM, SUITE_CHACHA } from "../../src/crypto/aead.ts";
import { generateX25519KeyPair, x25519Noble, x25519PublicKey, type X25519KeyPair } from "../../src/crypto/x25519.ts";
import { checkMac1, Handshaker, mac1Key, writeMacs, type HandshakeHooks } from "../../src/wg/handshake.ts";
import { writeTransportHeader } from "../../src/wg/messages.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const seq = (from: number) => Uint8Array.from({ length: 32 }, (_, i) => from + i);
const pair = (priv: Uint8Array): X25519KeyPair => ({ privateKey: priv, publicKey: x25519PublicKey(priv) });

const SI = pair(seq(1));
const SR = pair(seq(33));
const EI = pair(seq(65));
const ER = pair(seq(97));
const PSK = seq(129);
const NOW = 1_700_000_000_123;
const II = 0x11223344;
const IR = 0x55667788;

const PIN = {
  Si_pub: "07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c",
  Sr_pub: "5869aff450549732cbaaed5e5df9b30a6da31cb0e5742bad5ad4a1a768f1a67b",
  msg1:
    "010000004433221164b101b1d0be5a8704bd078f9895001fc03e8e9f9522f188dd128d9846d48466158a0e4ca242d151ca97ab90159a98b67e616625e68b4065d357376b6598e644ad7d678c0295d22de4cb43d5135581ed36346bfa7cf42a122639f89315e67f2b43de40f99f8e6be9135e1632d45237be41c55cffa3e7b390a525fe6500000000000000000000000000000000",
  msg2: "020000008877665544332211244fe3b963e899dd295baffce248d3530f3a9a7479ba063002680ebfe7adad4927d9d0c10dbd892b072dfd62f2b6d42bee99ce22cd644e00a4f7522e3d9c984400000000000000000000000000000000",
  initiatorSend: "248a29611829aaf7ee8bc8e87df805c1019f08f82d80eb79b7625821ba0a1317",
  initiatorRecv: "848308e622b3e15e5ebc5312111efc31082e86c85e9ee93fe8c5aa7f972cc9c3",
  transport: "04000000887766550000000000000000aae614dcc328b9799da2ee174e22a8a1c4bf1c3b",
};

function fixedPair(hooks: Omit<HandshakeHooks, "ephemeral" | "now"> = {}) {
  const initiator = new Handshaker(SI, { ...hooks, ephemeral: () => EI, now: () => NOW });
  const responder = new Handshaker(SR, { ...hooks, ephemeral: () => ER, now: () => NOW });
  return { initiator, responder };
}

const transcriptBackends: [string, Omit<HandshakeHooks, "ephemeral" | "now">][] = [
  ["fast backends (node:crypto X25519, default AEAD)", {}],
  ["noble reference backends", { aead: createAead("noble"), dh: x25519Noble }],
];

describe.each(transcriptBackends)("fixed transcript with %s", (_name, hooks) => {
  test("static public keys", () => {
    expect(hex(SI.publicKey)).toBe(PIN.Si_pub);
    expect(hex(SR.publicKey)).toBe(PIN.Sr_pub);
  });

  test("message 1, message 2, session keys and the first transport message are byte-exact", () => {
    const { initiator, responder } = fixedPair(hooks);
    const { message: m1, pending } = initiator.createInitiation(SR.publicKey, PSK, II);
    expect(hex(m1)).toBe(PIN.msg1);
    expect(responder.checkMac1(m1)).toBe(true);

    const got = responder.consumeInitiation(m1);
    expect(got).not.toBeNull();
    expect(hex(got!.peerPublic)).toBe(PIN.Si_pub);
    expect(hex(got!.timestamp)).toBe("400000006553f10a07000000");
    expect(got!.remoteIndex).toBe(II);

    const { message: m2, keys: rk } = responder.createResponse(got!.state, PSK, IR);
    expect(hex(m2)).toBe(PIN.msg2);
    expect(initiator.checkMac1(m2)).toBe(true);

    const ik = initiator.consumeResponse(pending, PSK, m2);
    expect(ik).not.toBeNull();
    expect(hex(ik!.sendKey)).toBe(PIN.initiatorSend);
    expect(hex(ik!.recvKey)).toBe(PIN.initiatorRecv);
    expect(ik).toMatchObject({ localIndex: II, remoteIndex: IR, isInitiator: true });
    expect(hex(rk.sendKey)).toBe(PIN.initiatorRecv);
    expect(hex(rk.recvKey)).toBe(PIN.initiatorSend);
    expect(rk).toMatchObject({ localIndex: IR, remoteIndex: II, isInitiator: false });

    const aead = hooks.aead ?? createAead();
    const data = new Uint8Array(16 + 4 + 16);
    writeTransportHeader(data, 0, ik!.remoteIndex, 0);
    data.set(new TextEncoder().encode("ping"), 16);
    aead.seal(ik!.sendKey, 0, data, 16, 4);
    expect(hex(data)).toBe(PIN.transport);
  });
});

describe("handshake between random identities", () => {
  const psk = new Uint8Array(32).fill(7);
  test("both roles derive mirrored keys; a second handshake gives fresh keys", () => {
    const a = generateX25519KeyPair();
    const b = generateX25519KeyPair();
    const ha = new Handshaker(a);
    const hb = new Handshaker(b);
    const seen = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const { message, pending } = ha.createInitiation(b.publicKey, psk, 100 + i);
      const got = hb.consumeInitiation(message)!;
      expect(hex(got.peerPublic)).toBe(hex(a.publicKey));
      const { message: resp, keys: kb } = hb.createResponse(got.state, psk, 200 + i);
      const ka = ha.consumeResponse(pending, psk, resp)!;
      expect(hex(ka.sendKey)).toBe(hex(kb.recvKey));
      expect(hex(ka.recvKey)).toBe(hex(kb.sendKey));
      expect(seen.has(hex(ka.sendKey))).toBe(false);
      seen.add(hex(ka.sendKey));
    }
  });

  test("a different PSK fails at message 2 (hosts of different networks never complete)", () => {
    const a = generateX25519KeyPair();
    const b = generateX25519KeyPair();
    const ha = new Handshaker(a);
    const hb = new Handshaker(b);
    const { message, pending } = ha.createInitiation(b.publicKey, psk, 1);
    const got = hb.consumeInitiation(message)!; // IKpsk2: message 1 does not depend on the PSK
    expect(got).not.toBeNull();
    const { message: resp } = hb.createResponse(got.state, new Uint8Array(32).fill(8), 2);
    expect(ha.consumeResponse(pending, psk, resp)).toBeNull();
  });

  test("an initiation for someone else does not authenticate, nor does its mac1", () => {
    const a = generateX25519KeyPair();
    const b = generateX25519KeyPair();
    const c = generateX25519KeyPair();
    const { message } = new Handshaker(a).createInitiation(b.publicKey, psk, 1);
    const hc = new Handshaker(c);
    expect(hc.checkMac1(message)).toBe(false);
    expect(hc.consumeInitiation(message)).toBeNull();
  });

  test("a response with the wrong receiver index or from the wrong responder is refused", () => {
    const a = generateX25519KeyPair();
    const b = generateX25519KeyPair();
    const ha = new Handshaker(a);
    const { message, pending } = ha.createInitiation(b.publicKey, psk, 5);
    const hb = new Handshaker(b);
    const got = hb.consumeInitiation(message)!;
    const { message: resp } = hb.createResponse(got.state, psk, 6);
    expect(ha.consumeResponse({ ...pending, localIndex: 4 }, psk, resp)).toBeNull();
    // Another initiation's pending state: same indices, different ephemeral.
    const other = ha.createInitiation(b.publicKey, psk, 5).pending;
    expect(ha.consumeResponse(other, psk, resp)).toBeNull();
    expect(ha.consumeResponse(pending, psk, resp)).not.toBeNull();
  });

  test("mac2 is written from a cookie and covers mac1", () => {
    const b = generateX25519KeyPair();
    const { message } = new Handshaker(generateX25519KeyPair()).createInitiation(b.publicKey, psk, 1, new Uint8Array(16).fill(1));
    expect(hex(message.subarray(132))).not.toBe("00".repeat(16));
    const copy = message.slice();
    writeMacs(copy, mac1Key(b.publicKey), null);
    expect(hex(copy.subarray(132))).toBe("00".repeat(16));
    expect(checkMac1(copy, mac1Key(b.publicKey))).toBe(true);
    expect(checkMac1(new Uint8Array(10), mac1Key(b.publicKey))).toBe(false);
  });
});

describe("handshake across backends and buffers", () => {
  const psk = new Uint8Array(32).fill(9);
  test("a noble-only initiator and a fast responder (and the reverse) complete with mirrored keys", () => {
    const noble = { aead: createAead("noble"), dh: x25519Noble };
    for (const [hi, hr] of [
      [noble, {}],
      [{}, noble],
    ] as const) {
      const a = generateX25519KeyPair();
      const b = generateX25519KeyPair();
      const ha = new Handshaker(a, hi);
      const hb = new Handshaker(b, hr);
      const { message, pending } = ha.createInitiation(b.publicKey, psk, 1);
      expect(hb.checkMac1(message)).toBe(true);
      const got = hb.consumeInitiation(message)!;
      const { message: resp, keys: kb } = hb.createResponse(got.state, psk, 2);
      expect(ha.checkMac1(resp)).toBe(true);
      const ka = ha.consumeResponse(pending, psk, resp)!;
      expect(hex(ka.sendKey)).toBe(hex(kb.recvKey));
      expect(hex(ka.recvKey)).toBe(hex(kb.sendKey));
    }
  });

  test("the responder's state does not alias the received datagram (the receive buffer is reused)", () => {
    const { initiator, responder } = fixedPair();
    const { message, pending } = initiator.createInitiation(SR.publicKey, PSK, II);
    const rxBuf = new Uint8Array(2048);
    rxBuf.set(message, 100);
    const got = responder.consumeInitiation(rxBuf.subarray(100, 248))!;
    rxBuf.fill(0xaa); // the next datagram overwrites the buffer
    const { message: m2 } = responder.createResponse(got.state, PSK, IR);
    expect(hex(m2)).toBe(PIN.msg2);
    expect(hex(got.peerPublic)).toBe(PIN.Si_pub);
    const ik = initiator.consumeResponse(pending, PSK, m2)!;
    expect(hex(ik.sendKey)).toBe(PIN.initiatorSend);
  });

  test("a replayed initiation authenticates again with the same timestamp (the caller refuses it by TAI64N)", () => {
    const { initiator, responder } = fixedPair();
    const { message } = initiator.createInitiation(SR.publicKey, PSK, II);
    const one = responder.consumeInitiation(message)!;
    const two = responder.consumeInitiation(message.slice())!;
    expect(hex(two.timestamp)).toBe(hex(one.timestamp));
  });
});

describe("transport suite negotiation (vine ↔ vine)", () => {
  const psk = new Uint8Array(32).fill(11);
  const AES = OFFER_AES_GCM;

  function run(offer: number, accept: number, tamper?: { m1?: (m: Uint8Array) => void; m2?: (m: Uint8Array) => void }) {
    const a = generateX25519KeyPair();
    const b = generateX25519KeyPair();
    const ha = new Handshaker(a, { accept });
    const hb = new Handshaker(b, { accept });
    const { message, pending } = ha.createInitiation(b.publicKey, psk, 1, null, offer);
    tamper?.m1?.(message);
    const got = hb.consumeInitiation(message);
    if (!got) return { m1: message, responder: null, initiator: null };
    const { message: resp, keys: kb } = hb.createResponse(got.state, psk, 2);
    tamper?.m2?.(resp);
    const ka = ha.consumeResponse(pending, psk, resp);
    return { m1: message, m2: resp, responder: kb, initiator: ka };
  }

  test("offer 0 is WireGuard: byte 1 stays zero and the suite is ChaCha20-Poly1305", () => {
    const r = run(0, AES);
    expect(r.m1[1]).toBe(0);
    expect(r.m2![1]).toBe(0);
    expect(r.initiator!.suite).toBe(SUITE_CHACHA);
    expect(r.responder!.suite).toBe(SUITE_CHACHA);
  });

  test("an AES-GCM offer accepted: both sides agree on AES-256-GCM with mirrored keys", () => {
    const r = run(AES, AES);
    expect(r.m1[1]).toBe(AES);
    expect(r.m2![1]).toBe(SUITE_AES_GCM);
    expect(r.initiator!.suite).toBe(SUITE_AES_GCM);
    expect(r.responder!.suite).toBe(SUITE_AES_GCM);
    expect(hex(r.initiator!.sendKey)).toBe(hex(r.responder!.recvKey));
  });

  test("an AES-GCM offer to a responder that does not accept it completes with ChaCha20-Poly1305", () => {
    const r = run(AES, 0);
    expect(r.m2![1]).toBe(SUITE_CHACHA);
    expect(r.initiator!.suite).toBe(SUITE_CHACHA);
    expect(r.responder!.suite).toBe(SUITE_CHACHA);
  });

  test("the offer is bound into the hash: stripping it (downgrade) or adding one breaks message 1", () => {
    expect(run(AES, AES, { m1: (m) => (m[1] = 0) }).responder).toBeNull();
    expect(run(0, AES, { m1: (m) => (m[1] = AES) }).responder).toBeNull();
  });

  test("the choice is bound into the hash: a flipped or unoffered choice breaks message 2", () => {
    // AES chosen, rewritten to ChaCha (downgrade): the initiator refuses.
    expect(run(AES, AES, { m2: (m) => (m[1] = SUITE_CHACHA) }).initiator).toBeNull();
    // ChaCha chosen, rewritten to AES: refused too.
    expect(run(AES, 0, { m2: (m) => (m[1] = SUITE_AES_GCM) }).initiator).toBeNull();
    // No offer, but a choice of AES: refused before any crypto.
    expect(run(0, AES, { m2: (m) => (m[1] = SUITE_AES_GCM) }).initiator).toBeNull();
  });

  // Pins from test/e2e/wg-interop/reference-transcript.py (independent Python, `cryptography`'s AESGCM).
  const AES_PIN = {
    msg1: "010100004433221164b101b1d0be5a8704bd078f9895001fc03e8e9f9522f188dd128d9846d48466158a0e4ca242d151ca97ab90159a98b67e616625e68b4065d357376b6598e644f873df4cab9e5039e5b1563794d41e5536346bfa7cf42a122639f8932d600241e6c0f2a11dde2e2d859ac8230ef394931a260269e618e6f35c964a5100000000000000000000000000000000",
    msg2: "020100008877665544332211244fe3b963e899dd295baffce248d3530f3a9a7479ba063002680ebfe7adad492bd7d77c8890b9c265af147ba10a17975510767dd21c7363cfc7bc3aa588740f00000000000000000000000000000000",
    initiatorSend: "049fe37c3575e5a0c48e092df809fd269c6fd01cfd5906fa3c5f7f7e22fda2b0",
    initiatorRecv: "8efce854136933c84b40bd7c7e1987a9d19f24c17f5b0174b773a7df146cfac3",
    transport: "0400000088776655000000000000000031af478c31a489936f9eccfd6e7ce6d93b09c395",
  };

  test.each(["libcrypto", "noble"] as const)("the fixed transcript with an AES-GCM offer matches the reference (%s AEAD)", (backend) => {
    const aead = createAead(backend);
    const initiator = new Handshaker(SI, { accept: AES, aead, ephemeral: () => EI, now: () => NOW });
    const responder = new Handshaker(SR, { accept: AES, aead, ephemeral: () => ER, now: () => NOW });
    const { message: m1, pending } = initiator.createInitiation(SR.publicKey, PSK, II, null, AES);
    expect(hex(m1)).toBe(AES_PIN.msg1);
    const got = responder.consumeInitiation(m1)!;
    const { message: m2, keys: rk } = responder.createResponse(got.state, PSK, IR);
    expect(hex(m2)).toBe(AES_PIN.msg2);
    const ik = initiator.consumeResponse(pending, PSK, m2)!;
    expect(ik.suite).toBe(SUITE_AES_GCM);
    expect(rk.suite).toBe(SUITE_AES_GCM);
    expect(hex(ik.sendKey)).toBe(AES_PIN.initiatorSend);
    expect(hex(ik.recvKey)).toBe(AES_PIN.initiatorRecv);
    expect(hex(rk.recvKey)).toBe(AES_PIN.initiatorSend);
    // The keys differ from WireGuard's for the same handshake: no key serves two ciphers.
    expect(hex(ik.sendKey)).not.toBe(PIN.initiatorSend);
    const gcm = createAead(backend, "aes-256-gcm");
    const data = new Uint8Array(16 + 4 + 16);
    writeTransportHeader(data, 0, ik.remoteIndex, 0);
    data.set(new TextEncoder().encode("ping"), 16);
    gcm.seal(ik.sendKey, 0, data, 16, 4);
    expect(hex(data)).toBe(AES_PIN.transport);
    expect(gcm.open(rk.recvKey, 0, data, 16, 20)).toBe(true);
  });
});
