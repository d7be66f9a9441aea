export * from "./keys.ts";
export * from "./store.ts";
export { networkPresharedKey } from "./network-psk.ts";
