// Handshakes per second with vine's WireGuard engine (src/wg/handshake.ts), single thread.
//
//   responder   what one responder does per handshake: check mac1, consume the initiation,
//               create the response. Initiations are made beforehand, outside the timed loop.
//               Median of three windows.
//   round trip  both sides: create initiation, responder work, consume response.
//
// Run: ./node_modules/.bin/bun bench/handshake.ts [seconds per measurement, default 2]
// Prints one JSON object on stdout (the last line) after a human-readable line on stderr.

import { randomBytes } from "node:crypto";
import { Handshaker } from "../src/wg/handshake.ts";
import { generateX25519KeyPair } from "../src/crypto/x25519.ts";
import { aeadBackendInfo } from "../src/crypto/aead.ts";

const seconds = Math.max(2, Number(process.argv[2] ?? "2"));
const PRE_MADE = 512; // distinct initiations cycled through by the responder loop

const initiatorKeys = generateX25519KeyPair();
const responderKeys = generateX25519KeyPair();
const initiator = new Handshaker(initiatorKeys);
const responder = new Handshaker(responderKeys);
const psk = new Uint8Array(randomBytes(32));

/** One full responder step; throws if the engine refuses a valid message (the number would be a lie). */
function respond(message: Uint8Array, localIndex: number): Uint8Array {
  if (!responder.checkMac1(message)) throw new Error("responder: mac1 check failed on a valid initiation");
  const consumed = responder.consumeInitiation(message);
  if (!consumed) throw new Error("responder: valid initiation refused");
  return responder.createResponse(consumed.state, psk, localIndex).message;
}

/** Repeat `op` until `seconds` have passed; returns operations and elapsed seconds. */
function timed(op: (i: number) => void): { ops: number; elapsed_s: number } {
  for (let i = 0; i < 64; i++) op(i); // warm-up: JIT, key objects
  let ops = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 16; i++) op(ops + i);
    ops += 16;
  }
  return { ops, elapsed_s: (performance.now() - start) / 1000 };
}

const initiations: Uint8Array[] = [];
for (let i = 0; i < PRE_MADE; i++) initiations.push(initiator.createInitiation(responderKeys.publicKey, psk, i + 1).message);

// Three windows, median reported: a single window on a shared machine swings with other load.
const responderRuns = [0, 1, 2].map(() =>
  timed((i) => {
    respond(initiations[i % PRE_MADE]!, i + 1);
  }),
);
const responderRates = responderRuns.map((r) => Math.round(r.ops / r.elapsed_s));
const responderMedian = [...responderRates].sort((a, b) => a - b)[1]!;

const roundTripRun = timed((i) => {
  const { message, pending } = initiator.createInitiation(responderKeys.publicKey, psk, i + 1);
  const response = respond(message, i + 100_000);
  if (!initiator.consumeResponse(pending, psk, response)) throw new Error("initiator: valid response refused");
});

const result = {
  benchmark: "handshake",
  threads: 1,
  aead: aeadBackendInfo().active,
  responder_per_s: responderMedian,
  responder_windows_per_s: responderRates,
  responder_seconds_per_window: Number(responderRuns[1]!.elapsed_s.toFixed(3)),
  round_trip_per_s: Math.round(roundTripRun.ops / roundTripRun.elapsed_s),
  round_trip_ops: roundTripRun.ops,
  round_trip_seconds: Number(roundTripRun.elapsed_s.toFixed(3)),
};
console.error(
  `handshake (1 thread, ${result.aead}): responder ${result.responder_per_s}/s (median of ${responderRates.join(", ")}), full round trip ${result.round_trip_per_s}/s`,
);
console.log(JSON.stringify(result));
