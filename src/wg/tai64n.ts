// Kept for existing importers: TAI64N lives with the other primitives in src/crypto/tai64n.ts.
export { TAI64N_SIZE, tai64n, tai64nCompare, tai64nNow } from "../crypto/tai64n.ts";
