// Sliding-window replay protection (RFC 6479 style, as WireGuard): 8192 bits in 256 u32 words,
// allocation-free. check() before decryption is cheap rejection; accept() after authentication marks.

import { REJECT_AFTER_MESSAGES } from "./constants.ts";

export const WINDOW_WORDS = 256;
export const WINDOW_BITS = WINDOW_WORDS * 32; // 8192
/** Counters this far behind the newest are rejected (one word is reserved for the ring's head). */
export const WINDOW_SIZE = WINDOW_BITS - 32;
/** Counters at or above this are refused: vine's JS ceiling for REJECT_AFTER_MESSAGES (see constants.ts). */
export const REJECT_COUNTER = REJECT_AFTER_MESSAGES;

export class ReplayWindow {
  private readonly bits: Uint32Array;
  private last = 0;

  constructor(storage?: Uint32Array) {
    this.bits = storage ?? new Uint32Array(WINDOW_WORDS);
    if (this.bits.length < WINDOW_WORDS) throw new Error(`replay window storage needs ${WINDOW_WORDS} words`);
  }

  reset(): void {
    this.bits.fill(0);
    this.last = 0;
  }

  /** Would `counter` be accepted? (No state change.) */
  check(counter: number): boolean {
    if (!(counter >= 0 && counter < REJECT_COUNTER)) return false; // also refuses NaN
    if (counter > this.last) return true;
    if (this.last - counter >= WINDOW_SIZE) return false;
    const word = Math.floor(counter / 32) % WINDOW_WORDS;
    return (this.bits[word]! & (1 << counter % 32)) === 0;
  }

  /** Mark `counter` as seen; false for a replay or a counter too old for the window. */
  accept(counter: number): boolean {
    if (!(counter >= 0 && counter < REJECT_COUNTER)) return false; // also refuses NaN
    const index = Math.floor(counter / 32);
    if (counter > this.last) {
      const current = Math.floor(this.last / 32);
      const diff = Math.min(index - current, WINDOW_WORDS);
      for (let i = 1; i <= diff; i++) this.bits[(current + i) % WINDOW_WORDS] = 0;
      this.last = counter;
    } else if (this.last - counter >= WINDOW_SIZE) {
      return false;
    }
    const word = index % WINDOW_WORDS;
    const bit = 1 << counter % 32;
    if (this.bits[word]! & bit) return false;
    this.bits[word]! |= bit;
    return true;
  }
}
