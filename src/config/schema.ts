// The normalised configuration the daemon consumes (after parsing and validation).

import type { Prefix } from "../overlay/prefix.ts";

export type { Prefix };

export interface Endpoint {
  host: string;
  port: number;
  text: string; // "udp://host:port"
}

export interface AllowedPeer {
  name: string;
  peerId: string | null; // null for a plain WireGuard peer
  publicKey: Uint8Array | null; // Ed25519
  x25519Public: Uint8Array;
  wireguardOnly: boolean;
  prefix: Prefix;
  relayCapable: boolean;
  endpoint: Endpoint | null;
  line: number;
}

export interface BootstrapPeer {
  peerId: string;
  publicKey: Uint8Array;
  endpoint: Endpoint;
  line: number;
}

export interface VineConfig {
  file: string;
  node: { name: string; networkId: string; stateDir: string; listenPort: number };
  tun: { name: string; address: number; addressText: string; prefixLen: number; mtu: number; prefix: Prefix };
  bootstrapPeers: BootstrapPeer[];
  allowedPeers: AllowedPeer[];
  policy: { strictAllowlist: boolean; allowRelay: boolean; allowSignalingUpgrade: boolean; relayService: boolean; cipher: CipherPolicy };
}

/** "auto": AES-256-GCM with other vine hosts when both have fast AES; "chacha20-poly1305": never. */
export type CipherPolicy = "auto" | "chacha20-poly1305";
export const CIPHER_POLICIES: readonly CipherPolicy[] = ["auto", "chacha20-poly1305"];

export interface Problem {
  file: string;
  line: number;
  key: string;
  message: string;
}

/** Every key vine reads, with its type and default: the single source for validation, the template and the book check. */
export const KEYS = {
  node: {
    name: { type: "string", required: true },
    network_id: { type: "string", required: true },
    state_dir: { type: "string", default: "/var/lib/libvine" },
    listen_port: { type: "integer", default: 4100 },
    identity_path: { type: "string", deprecated: "identity lives in the state database (state_dir); identity_path is ignored" },
  },
  tun: {
    name: { type: "string", default: "vine0" },
    address: { type: "string", required: true },
    prefix_len: { type: "integer", required: true },
    mtu: { type: "integer", default: 1420 },
  },
  bootstrap_peers: {
    peer_id: { type: "string", required: true },
    address: { type: "string", required: true },
  },
  allowed_peers: {
    name: { type: "string" },
    peer_id: { type: "string" },
    wireguard_key: { type: "string" },
    prefix: { type: "string", required: true },
    relay_capable: { type: "boolean", default: false },
    endpoint: { type: "string" },
  },
  policy: {
    strict_allowlist: { type: "boolean", default: true },
    allow_relay: { type: "boolean", default: true },
    allow_signaling_upgrade: { type: "boolean", default: true },
    relay_service: { type: "boolean", default: false },
    cipher: { type: "string", default: "auto" },
  },
} as const;

export type Section = keyof typeof KEYS;
export const ARRAY_SECTIONS: readonly Section[] = ["bootstrap_peers", "allowed_peers"];
