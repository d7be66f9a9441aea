// Crypto throughput on this host: transport AEAD (seal + open of 1400-byte packets, in place) for the
// libcrypto and noble backends, and X25519 through node:crypto and @noble/curves.
// Run: ./node_modules/.bin/bun bench/crypto.ts [seconds per row, default 1]

import { randomBytes } from "node:crypto";
import { createLibcryptoAead } from "../src/crypto/aead-libcrypto.ts";
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

const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length), ["operation", "backend", "rate"][c]!.length));
const line = (r: string[]) => r.map((v, i) => (i < 2 ? v.padEnd(widths[i]!) : v)).join("  ");
console.log(line(["operation", "backend", "rate"]));
console.log(line(widths.map((w) => "-".repeat(w))));
for (const r of rows) console.log(line(r));
