// Loading and validating a vine config. Every problem is reported at once, each with file, line and
// key, and nothing is half-applied: the caller gets a config only when there are no problems.

import { parse, TomlError } from "smol-toml";
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { decodePeerId, shortPeerId } from "../identity/keys.ts";
import { x25519FromEd25519Public } from "../crypto/ed25519.ts";
import { formatIPv4, maskOf, parseIPv4, parsePrefix, prefixOf, prefixesOverlap, type Prefix } from "../overlay/prefix.ts";
import { LineMap } from "./lines.ts";
import { ARRAY_SECTIONS, CIPHER_POLICIES, KEYS, type CipherPolicy, type AllowedPeer, type BootstrapPeer, type Endpoint, type Problem, type Section, type VineConfig } from "./schema.ts";

export interface LoadResult {
  config: VineConfig | null;
  problems: Problem[];
  warnings: Problem[];
}

type Table = Record<string, unknown>;

export function loadConfig(path: string): LoadResult {
  const file = resolve(path);
  let source: string;
  try {
    source = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (e as Error).message;
    return { config: null, problems: [{ file, line: 0, key: "", message: `cannot read the config: ${why}` }], warnings: [] };
  }
  return validateConfig(file, source, statSync(file).mode);
}

/** Validate config text; `mode` (the file's st_mode) enables the writable-by-others check. */
export function validateConfig(file: string, source: string, mode?: number): LoadResult {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const lines = new LineMap(source);
  const problem = (key: string, message: string) => problems.push({ file, line: lines.lineOf(key), key, message });
  const warn = (key: string, message: string) => warnings.push({ file, line: lines.lineOf(key), key, message });

  if (mode !== undefined && (mode & 0o022) !== 0) {
    problems.push({ file, line: 0, key: "", message: `the config is writable by ${mode & 0o002 ? "everyone" : "its group"} (mode ${(mode & 0o777).toString(8)}): anyone who can write it can join peers; fix: chmod 600 ${file}` });
  }

  let doc: Table;
  try {
    doc = parse(source) as Table;
  } catch (e) {
    if (e instanceof TomlError) {
      problems.push({ file, line: e.line, key: "", message: `TOML syntax: ${e.message.split("\n")[0]}` });
    } else problems.push({ file, line: 1, key: "", message: `TOML syntax: ${(e as Error).message}` });
    return { config: null, problems, warnings };
  }

  // ---- shape: known sections and keys, types, required keys
  for (const section of Object.keys(doc)) {
    if (!(section in KEYS)) problem(section, `unknown section [${section}] (known: ${Object.keys(KEYS).join(", ")})`);
  }
  // Memoized: sections are walked more than once, and a shape problem must be reported once.
  const walked = new Map<Section, { path: string; t: Table }[]>();
  const tables = (section: Section): { path: string; t: Table }[] => {
    let r = walked.get(section);
    if (!r) walked.set(section, (r = walk(section)));
    return r;
  };
  const walk = (section: Section): { path: string; t: Table }[] => {
    const v = doc[section];
    if (v === undefined) return [];
    const isArray = ARRAY_SECTIONS.includes(section);
    if (isArray) {
      if (!Array.isArray(v)) {
        problem(section, `[[${section}]] must be an array of tables (write [[${section}]], not [${section}])`);
        return [];
      }
      return v.map((t, i) => ({ path: `${section}[${i}]`, t: t as Table }));
    }
    if (typeof v !== "object" || Array.isArray(v) || v === null) {
      problem(section, `[${section}] must be a table`);
      return [];
    }
    return [{ path: section, t: v as Table }];
  };
  const checked = new Map<string, Table>();
  for (const section of Object.keys(KEYS) as Section[]) {
    const spec = KEYS[section] as Record<string, { type: string; required?: boolean; deprecated?: string }>;
    for (const { path, t } of tables(section)) {
      checked.set(path, t);
      for (const [k, v] of Object.entries(t)) {
        const s = spec[k];
        if (!s) {
          problem(`${path}.${k}`, `unknown key ${k} in [${section}] (known: ${Object.keys(spec).join(", ")})`);
          continue;
        }
        if (s.deprecated) warn(`${path}.${k}`, s.deprecated);
        const ok = s.type === "integer" ? Number.isInteger(v) : typeof v === s.type;
        if (!ok) problem(`${path}.${k}`, `${k} must be ${s.type === "integer" ? "an integer" : `a ${s.type}`}, not ${describe(v)}`);
      }
      for (const [k, s] of Object.entries(spec)) {
        if (s.required && t[k] === undefined) problem(`${path}.${k}`, `${k} is required in [${section}]`);
      }
    }
  }
  for (const required of ["node", "tun"] as const) {
    if (doc[required] === undefined) problem(required, `section [${required}] is required`);
  }

  const str = (t: Table | undefined, k: string): string | undefined => (typeof t?.[k] === "string" ? (t[k] as string) : undefined);
  const int = (t: Table | undefined, k: string): number | undefined => (Number.isInteger(t?.[k]) ? (t![k] as number) : undefined);
  const bool = (t: Table | undefined, k: string, d: boolean): boolean => (typeof t?.[k] === "boolean" ? (t[k] as boolean) : d);

  // ---- [node]
  const node = checked.get("node");
  const name = str(node, "name") ?? "";
  if (node && typeof node.name === "string" && name.trim() === "") problem("node.name", "name must not be empty");
  const networkId = str(node, "network_id") ?? "";
  const nidBytes = new TextEncoder().encode(networkId).length;
  if (typeof node?.network_id === "string" && (nidBytes < 1 || nidBytes > 64)) problem("node.network_id", `network_id must be 1 to 64 bytes (is ${nidBytes})`);
  const stateDir = str(node, "state_dir") ?? KEYS.node.state_dir.default;
  if (!stateDir.startsWith("/")) problem("node.state_dir", `state_dir must be an absolute path, not "${stateDir}"`);
  const listenPort = int(node, "listen_port") ?? KEYS.node.listen_port.default;
  if (listenPort < 1 || listenPort > 65535) problem("node.listen_port", `listen_port must be 1 to 65535, not ${listenPort}`);

  // ---- [tun]
  const tun = checked.get("tun");
  const tunName = str(tun, "name") ?? KEYS.tun.name.default;
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(tunName)) problem("tun.name", `tun name "${tunName}" must be 1 to 15 characters of A-Z a-z 0-9 _ . -`);
  const addressText = str(tun, "address") ?? "";
  const address = parseIPv4(addressText);
  if (tun && typeof tun.address === "string" && address === null) problem("tun.address", `"${addressText}" is not an IPv4 address`);
  const prefixLen = int(tun, "prefix_len") ?? 24;
  if (tun && Number.isInteger(tun.prefix_len) && (prefixLen < 1 || prefixLen > 32)) problem("tun.prefix_len", `prefix_len must be 1 to 32, not ${prefixLen}`);
  const mtu = int(tun, "mtu") ?? KEYS.tun.mtu.default;
  if (mtu < 576 || mtu > 9000) problem("tun.mtu", `mtu must be 576 to 9000, not ${mtu}`);
  let localPrefix: Prefix | null = null;
  if (address !== null && prefixLen >= 1 && prefixLen <= 32) {
    localPrefix = prefixOf(address, prefixLen);
    const host = (address & ~maskOf(prefixLen)) >>> 0;
    if (prefixLen <= 30 && (host === 0 || host === (~maskOf(prefixLen) >>> 0))) {
      problem("tun.address", `${addressText} is the ${host === 0 ? "network" : "broadcast"} address of ${localPrefix.text}; use a host address inside it`);
    }
  }

  // ---- [[allowed_peers]]
  const allowed: AllowedPeer[] = [];
  const seenKeys = new Map<string, string>();
  const claimed: { prefix: Prefix; path: string; who: string }[] = localPrefix ? [{ prefix: localPrefix, path: "tun.address", who: "this host" }] : [];
  for (const { path, t } of tables("allowed_peers")) {
    const pid = str(t, "peer_id");
    const wgk = str(t, "wireguard_key");
    let publicKey: Uint8Array | null = null;
    let x25519: Uint8Array | null = null;
    if (pid !== undefined && wgk !== undefined) problem(`${path}.wireguard_key`, "give either peer_id or wireguard_key, not both");
    else if (pid === undefined && wgk === undefined) problem(`${path}.peer_id`, "peer_id (a vine peer) or wireguard_key (a plain WireGuard peer) is required");
    if (pid !== undefined) {
      publicKey = decodePeerId(pid);
      if (!publicKey) problem(`${path}.peer_id`, `"${pid}" is not a valid peer_id (expected vine1… as printed by \`vine identity show\`; check for typos)`);
      else x25519 = x25519FromEd25519Public(publicKey);
    } else if (wgk !== undefined) {
      const raw = /^[A-Za-z0-9+/]{43}=$/.test(wgk) ? new Uint8Array(Buffer.from(wgk, "base64")) : null;
      if (!raw || raw.length !== 32) problem(`${path}.wireguard_key`, `"${wgk}" is not a WireGuard key (base64 of 32 bytes, as \`wg pubkey\` prints)`);
      else x25519 = raw;
    }
    const keyHex = x25519 ? Buffer.from(x25519).toString("hex") : null;
    if (keyHex) {
      const dup = seenKeys.get(keyHex);
      if (dup) problem(`${path}.${pid ? "peer_id" : "wireguard_key"}`, `duplicate peer: the same identity is already listed at ${dup}`);
      else seenKeys.set(keyHex, path);
    }
    let prefix: Prefix | null = null;
    const ptext = str(t, "prefix");
    if (ptext !== undefined) {
      const p = parsePrefix(ptext);
      if (typeof p === "string") problem(`${path}.prefix`, p);
      else {
        prefix = p;
        const who = str(t, "name") ?? (pid ? shortPeerId(pid) : path);
        for (const c of claimed) {
          if (prefixesOverlap(c.prefix, p)) problem(`${path}.prefix`, `${p.text} overlaps ${c.prefix.text} owned by ${c.who} (${c.path}); every host owns a distinct prefix`);
        }
        claimed.push({ prefix: p, path: `${path}.prefix`, who });
      }
    }
    const endpoint = endpointOf(t, "endpoint", `${path}.endpoint`, problem);
    const pname = str(t, "name") ?? (pid ? shortPeerId(pid) : `wireguard-${allowed.length + 1}`);
    if (x25519 && prefix) {
      allowed.push({
        name: pname,
        peerId: pid ?? null,
        publicKey,
        x25519Public: x25519,
        wireguardOnly: pid === undefined,
        prefix,
        relayCapable: bool(t, "relay_capable", false),
        endpoint,
        line: lines.lineOf(path),
      });
    }
  }
  const names = new Map<string, string>();
  for (const { path, t } of tables("allowed_peers")) {
    const n = str(t, "name");
    if (n === undefined) continue;
    if (names.has(n)) problem(`${path}.name`, `duplicate peer name "${n}" (also at ${names.get(n)})`);
    else names.set(n, path);
  }

  // ---- [[bootstrap_peers]]
  const bootstrap: BootstrapPeer[] = [];
  for (const { path, t } of tables("bootstrap_peers")) {
    const pid = str(t, "peer_id");
    const pub = pid !== undefined ? decodePeerId(pid) : null;
    if (pid !== undefined && !pub) problem(`${path}.peer_id`, `"${pid}" is not a valid peer_id (expected vine1… as printed by \`vine identity show\`)`);
    const endpoint = endpointOf(t, "address", `${path}.address`, problem);
    if (pub && pid && !allowed.some((a) => a.peerId === pid)) {
      problem(`${path}.peer_id`, "a bootstrap peer must also be in [[allowed_peers]] (with the prefix it owns): vine only talks to allow-listed identities");
    }
    if (pub && pid && endpoint) bootstrap.push({ peerId: pid, publicKey: pub, endpoint, line: lines.lineOf(path) });
  }

  // ---- [policy]
  const policy = checked.get("policy");
  const cfgPolicy = {
    strictAllowlist: bool(policy, "strict_allowlist", true),
    allowRelay: bool(policy, "allow_relay", true),
    allowSignalingUpgrade: bool(policy, "allow_signaling_upgrade", true),
    relayService: bool(policy, "relay_service", false),
    cipher: "auto" as CipherPolicy,
  };
  const cipher = str(policy, "cipher");
  if (cipher !== undefined) {
    if ((CIPHER_POLICIES as readonly string[]).includes(cipher)) cfgPolicy.cipher = cipher as CipherPolicy;
    else problem("policy.cipher", `cipher must be one of ${CIPHER_POLICIES.map((c) => `"${c}"`).join(", ")}, not "${cipher}"`);
  }
  if (!cfgPolicy.strictAllowlist) warn("policy.strict_allowlist", "strict_allowlist = false is not supported yet: only [[allowed_peers]] are admitted");

  if (problems.length > 0 || !localPrefix || address === null) return { config: null, problems, warnings };
  return {
    config: {
      file,
      node: { name, networkId, stateDir, listenPort },
      tun: { name: tunName, address, addressText: formatIPv4(address), prefixLen, mtu, prefix: localPrefix },
      bootstrapPeers: bootstrap,
      allowedPeers: allowed,
      policy: cfgPolicy,
    },
    problems,
    warnings,
  };
}

/** "file:line: key: message" (line and key omitted when they do not apply). */
export function formatProblem(p: Problem): string {
  return `${p.file}${p.line > 0 ? `:${p.line}` : ""}: ${p.key ? `${p.key}: ` : ""}${p.message}`;
}

/** "udp://host:port" → Endpoint; problems are reported against `path`. */
export function parseEndpoint(text: string): Endpoint | string {
  const m = /^udp:\/\/([^:/\s]+):(\d{1,5})$/.exec(text);
  if (!m) return `"${text}" is not an endpoint (expected udp://host:port)`;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return `port ${port} is out of range (1 to 65535)`;
  const host = m[1]!;
  if (/^[\d.]+$/.test(host) && parseIPv4(host) === null) return `"${host}" is not an IPv4 address`;
  if (!/^[A-Za-z0-9.-]+$/.test(host)) return `"${host}" is not a host name or IPv4 address`;
  return { host, port, text };
}

function endpointOf(t: Table, key: string, path: string, problem: (key: string, msg: string) => void): Endpoint | null {
  const v = t[key];
  if (typeof v !== "string") return null;
  const e = parseEndpoint(v);
  if (typeof e === "string") {
    problem(path, e);
    return null;
  }
  return e;
}

function describe(v: unknown): string {
  if (typeof v === "string") return `the string "${v}"`;
  if (Array.isArray(v)) return "an array";
  if (v === null) return "null";
  return `${typeof v} ${JSON.stringify(v)}`;
}
