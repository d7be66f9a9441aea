// The WireGuard preshared key of a vine network, derived from its network_id so that hosts of
// different networks never complete a handshake (IKpsk2 mixes the PSK into the final keys).
//
//   psk = BLAKE2s-256( "vine network psk v1" ‖ 0x00 ‖ UTF-8(network_id) )

import { blake2s } from "@noble/hashes/blake2.js";

const LABEL = new TextEncoder().encode("vine network psk v1");

export function networkPresharedKey(networkId: string): Uint8Array {
  const id = new TextEncoder().encode(networkId);
  const input = new Uint8Array(LABEL.length + 1 + id.length);
  input.set(LABEL, 0);
  input.set(id, LABEL.length + 1);
  return blake2s(input, { dkLen: 32 });
}
