// Crypto throughput on this host: transport AEAD (seal + open of 1400-byte packets, in place) for the
// libcrypto and noble backends, X25519 through node:crypto and @noble/curves, and handshakes per second
// on the responder side (consumeInitiation + createResponse; initiations made outside the timed loop)
// with the fast backends and with the noble ones.
// Run: ./node_modules/.bin/bun bench/crypto.ts [seconds per row, default 1]

import { randomBytes } from "node:crypto";
import { createLibcryptoAead } from "../src/crypto/aead-libcrypto.ts";
import { createAead } from "../src/crypto/aead.ts";
import { Handshaker, type HandshakeHooks } from "../src/wg/handshake.ts";
import { createNobleAead } from "../src/crypto/aead-noble.ts";
import type { Aead } from "../src/crypto/aead.ts";
import { generateX25519KeyPair, x25519, x25519Noble } from "../src/crypto/x25519.ts";

const seconds = Number(process.argv[2] ?? "1");
const PACKET = 1400;

/** Run `op` in batches until `seconds` have passed; operations per second. */
function rate(op: (i: number) => void, batch: number): number {
  for (let i = 0; i < batch; i++) op(i); // warm-up
  let n = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < batch; i++) op(n + i);
    n += batch;
  }
  return n / ((performance.now() - start) / 1000);
}

function aeadRate(aead: Aead, shared = false): number {
  // The data plane keeps keys and packets in SharedArrayBuffers; measure that layout too.
  const key = new Uint8Array(shared ? new SharedArrayBuffer(32) : new ArrayBuffer(32));
  key.set(randomBytes(32));
  const buf = new Uint8Array(shared ? new SharedArrayBuffer(2048) : new ArrayBuffer(2048));
  buf.set(randomBytes(PACKET), 16);
  return rate((i) => {
    aead.seal(key, i, buf, 16, PACKET);
    if (!aead.open(key, i, buf, 16, PACKET + 16)) throw new Error(`${aead.name}: open failed`);
  }, 256);
}

const rows: [string, string, string][] = [];
const lib = createLibcryptoAead();
for (const aead of [lib, createNobleAead()]) {
  if (!aead) {
    rows.push(["ChaCha20-Poly1305 seal+open 1400 B", "libcrypto", "unavailable"]);
    continue;
  }
  const r = aeadRate(aead);
  rows.push(["ChaCha20-Poly1305 seal+open 1400 B", aead.name, `${Math.round(r).toLocaleString("en")} pkt/s  (${((r * PACKET * 8) / 1e6).toFixed(0)} Mbit/s)`]);
}
if (lib) {
  const r = aeadRate(lib, true);
  rows.push(["ChaCha20-Poly1305 seal+open 1400 B", "libcrypto (SharedArrayBuffer)", `${Math.round(r).toLocaleString("en")} pkt/s  (${((r * PACKET * 8) / 1e6).toFixed(0)} Mbit/s)`]);
}
const a = generateX25519KeyPair();
const b = generateX25519KeyPair();
for (const [name, dh] of [["node:crypto", x25519], ["noble", x25519Noble]] as const) {
  const r = rate(() => {
    if (!dh(a.privateKey, b.publicKey)) throw new Error("dh failed");
  }, 32);
  rows.push(["X25519 shared secret", name, `${Math.round(r).toLocaleString("en")} op/s`]);
}

// Handshakes: the responder's work per handshake, on pre-made initiations (distinct ephemerals).
const psk = new Uint8Array(randomBytes(32));
for (const [name, hooks] of [
  ["node:crypto X25519 + libcrypto AEAD", {}],
  ["noble X25519 + noble AEAD", { aead: createAead("noble"), dh: x25519Noble }],
] as [string, HandshakeHooks][]) {
  const initiator = new Handshaker(a, hooks);
  const responder = new Handshaker(b, hooks);
  const made = Array.from({ length: 64 }, (_, i) => initiator.createInitiation(b.publicKey, psk, i).message);
  const r = rate((i) => {
    const got = responder.consumeInitiation(made[i % made.length]!);
    if (!got) throw new Error("responder refused a valid initiation");
    responder.createResponse(got.state, psk, i);
  }, 8);
  rows.push(["handshake, responder (consume msg 1 + create msg 2)", name, `${Math.round(r).toLocaleString("en")} handshakes/s`]);
}

const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length), ["operation", "backend", "rate"][c]!.length));
const line = (r: string[]) => r.map((v, i) => (i < 2 ? v.padEnd(widths[i]!) : v)).join("  ");
console.log(line(["operation", "backend", "rate"]));
console.log(line(widths.map((w) => "-".repeat(w))));
for (const r of rows) console.log(line(r));
