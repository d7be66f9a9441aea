export * from "./keys.ts";
export * from "./store.ts";
export { networkPresharedKey } from "./network-psk.ts";
export { x25519FromEd25519Public } from "../crypto/ed25519.ts";
