// `vine identity init | show | fingerprint | export-public`.

import { defineCommand } from "citty";
import { existsSync } from "node:fs";
import { generateIdentity, identityCreatedAt, loadIdentity, networkPresharedKey, saveIdentity, type Identity } from "../identity/index.ts";
import { loadConfig } from "../config/index.ts";
import { openState, stateDbPath } from "../state/db.ts";
import { checkFormat, fail, formatArg, printJson, resolveStateDir, stateArgs } from "./common.ts";

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

function withIdentity<T>(stateDir: string, fn: (id: Identity, createdAt: number | null) => T): T {
  const store = openState(stateDir, { readonly: true });
  try {
    const id = loadIdentity(store);
    if (!id) fail(`no identity in ${stateDbPath(stateDir)}: run \`vine identity init --state-dir ${stateDir}\``);
    return fn(id, identityCreatedAt(store));
  } finally {
    store.close();
  }
}

const init = defineCommand({
  meta: { name: "init", description: "Create this host's identity (Ed25519) in the state database" },
  args: { ...stateArgs, force: { type: "boolean", description: "replace an existing identity (peers must then update their allowlists)" }, ...formatArg },
  run({ args }) {
    const format = checkFormat(args.format);
    const stateDir = resolveStateDir(args);
    const existed = existsSync(stateDbPath(stateDir));
    const store = openState(stateDir, { create: true });
    try {
      const old = existed ? loadIdentity(store) : null;
      if (old && !args.force) fail(`an identity already exists in ${store.path} (${old.peerId}); use --force to replace it (every peer must then update its allowlist)`);
      const id = generateIdentity();
      saveIdentity(store, id);
      if (format === "json") printJson({ peer_id: id.peerId, fingerprint: id.fingerprint, state_dir: stateDir, replaced: old?.peerId ?? null });
      else {
        console.log(`${old ? "replaced" : "created"} identity in ${store.path}`);
        console.log(`peer_id     ${id.peerId}`);
        console.log(`fingerprint ${id.fingerprint}`);
      }
    } finally {
      store.close();
    }
  },
});

const show = defineCommand({
  meta: { name: "show", description: "Print this host's peer_id, fingerprint and public keys (never the secret)" },
  args: { ...stateArgs, ...formatArg },
  run({ args }) {
    const format = checkFormat(args.format);
    withIdentity(resolveStateDir(args), (id, createdAt) => {
      const out = {
        peer_id: id.peerId,
        fingerprint: id.fingerprint,
        public_key: b64(id.publicKey),
        x25519_public: b64(id.x25519Public),
        created_at: createdAt ? new Date(createdAt).toISOString() : null,
      };
      if (format === "json") printJson(out);
      else for (const [k, v] of Object.entries(out)) console.log(`${k.padEnd(14)}${v}`);
    });
  },
});

const fingerprint = defineCommand({
  meta: { name: "fingerprint", description: "Print the short fingerprint to compare out of band" },
  args: { ...stateArgs, ...formatArg },
  run({ args }) {
    const format = checkFormat(args.format);
    withIdentity(resolveStateDir(args), (id) => (format === "json" ? printJson({ fingerprint: id.fingerprint, peer_id: id.peerId }) : console.log(id.fingerprint)));
  },
});

const exportPublic = defineCommand({
  meta: { name: "export-public", description: "Print what other hosts need: text, json, a TOML [[allowed_peers]] block, or a WireGuard [Peer] section" },
  args: { ...stateArgs, format: { type: "string", description: "text, json, toml or wireguard", default: "text", valueHint: "text|json|toml|wireguard" } },
  run({ args }) {
    const format = String(args.format);
    if (!["text", "json", "toml", "wireguard"].includes(format)) fail(`--format must be text, json, toml or wireguard, not ${JSON.stringify(format)}`);
    const cfg = args.config ? loadConfig(String(args.config)).config : null;
    if (args.config && !cfg) fail(`the config ${args.config} is invalid: run \`vine config validate -c ${args.config}\``);
    withIdentity(resolveStateDir(args), (id) => {
      const name = cfg?.node.name ?? "this-host";
      const prefix = cfg?.tun.prefix.text ?? null;
      switch (format) {
        case "json":
          return printJson({ name, peer_id: id.peerId, fingerprint: id.fingerprint, public_key: b64(id.publicKey), x25519_public: b64(id.x25519Public), prefix, listen_port: cfg?.node.listenPort ?? null });
        case "toml":
          return console.log(
            [
              `[[allowed_peers]]`,
              `name = "${name}"`,
              `peer_id = "${id.peerId}"`,
              prefix ? `prefix = "${prefix}"` : `prefix = "REPLACE-with-the-prefix-this-host-owns"  # e.g. 10.42.7.0/24`,
              `relay_capable = false`,
              `# endpoint = "udp://<address of ${name}>:${cfg?.node.listenPort ?? 4100}"   # optional static endpoint`,
            ].join("\n"),
          );
        case "wireguard": {
          const lines = [`# vine host ${name} (${id.peerId}), for a WireGuard configuration`, `[Peer]`, `PublicKey = ${b64(id.x25519Public)}`];
          if (cfg) lines.push(`PresharedKey = ${b64(networkPresharedKey(cfg.node.networkId))}`);
          else lines.push(`# PresharedKey: pass -c FILE (it is derived from the network_id)`);
          if (prefix) lines.push(`AllowedIPs = ${prefix}`);
          lines.push(`# Endpoint = <address of ${name}>:${cfg?.node.listenPort ?? 4100}`);
          return console.log(lines.join("\n"));
        }
        default:
          console.log(`${name} ${id.peerId}`);
          console.log(`fingerprint ${id.fingerprint}`);
      }
    });
  },
});

export const identity = defineCommand({
  meta: { name: "identity", description: "Create and show this host's identity" },
  subCommands: { init, show, fingerprint, "export-public": exportPublic },
});
