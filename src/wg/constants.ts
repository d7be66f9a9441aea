// WireGuard's constants (whitepaper §5.4 and §6). Timers can be scaled down for tests only, through
// VINE_TEST_TIME_SCALE (e.g. 0.05 makes a rekey happen every 6 s instead of 120 s).

export const MSG_INITIATION = 1;
export const MSG_RESPONSE = 2;
export const MSG_COOKIE_REPLY = 3;
export const MSG_TRANSPORT = 4;

export const INITIATION_SIZE = 148;
export const RESPONSE_SIZE = 92;
export const COOKIE_REPLY_SIZE = 64;
export const TRANSPORT_HEADER_SIZE = 16;
export const TAG_SIZE = 16;

export const CONSTRUCTION = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
export const IDENTIFIER = "WireGuard v1 zx2c4 Jason@zx2c4.com";
export const LABEL_MAC1 = "mac1----";
export const LABEL_COOKIE = "cookie--";

/**
 * Messages per keypair. WireGuard's values are u64: rekey after 2^60, reject at 2^64 − 2^13 − 1
 * (REJECT_AFTER_MESSAGES_U64 below, exact). A JS number counts exactly only up to 2^53, so vine's
 * number ceiling for rejection is 2^53: stricter than WireGuard (a peer never sends a counter vine
 * would accept but WireGuard would not) and unreachable in practice (28 years at 10 Mpps). The
 * 120-second REKEY_AFTER_TIME always renews a keypair long before either message limit.
 */
export const REKEY_AFTER_MESSAGES = 2 ** 60;
export const REJECT_AFTER_MESSAGES = 2 ** 53;
export const REJECT_AFTER_MESSAGES_U64 = 2n ** 64n - 2n ** 13n - 1n;

// Times in milliseconds.
export const REKEY_AFTER_TIME = 120_000;
export const REJECT_AFTER_TIME = 180_000;
export const REKEY_ATTEMPT_TIME = 90_000;
export const REKEY_TIMEOUT = 5_000;
/** Up to this much random jitter is added to each REKEY_TIMEOUT retransmission. */
export const REKEY_TIMEOUT_JITTER = 333;
export const KEEPALIVE_TIMEOUT = 10_000;
export const COOKIE_SECRET_MAX_AGE = 120_000;

let scale: number | null = null;

/** The test time scale (1 in production). */
export function timeScale(): number {
  if (scale === null) {
    const v = Number(process.env.VINE_TEST_TIME_SCALE ?? "1");
    scale = Number.isFinite(v) && v > 0 && v <= 1 ? v : 1;
  }
  return scale;
}

/** A protocol time (ms) under the test time scale: what timers should actually wait. */
export function scaled(ms: number): number {
  return ms * timeScale();
}

/**
 * REKEY_TIMEOUT waits for a network round trip, not for a lifetime: under a test scale it shrinks no
 * further than 1/5 (1 s), so that a loaded machine still answers a handshake in time.
 */
export function rekeyTimeout(): number {
  return REKEY_TIMEOUT * Math.max(timeScale(), 0.2);
}
