// Config validation: one valid and one invalid case for every rule in src/config/load.ts, each
// asserting the file, line (found in the fixture text, not hard-coded) and key of the problem; every
// problem is reported at once; the file-mode check; identity_path is a warning; the multi-pc examples
// validate with real peer ids and their placeholders are reported line by line; random input never throws.

import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { formatProblem, loadConfig, validateConfig } from "../../src/config/index.ts";
import { decodePeerId, generateIdentity } from "../../src/identity/keys.ts";
import { x25519FromEd25519Public } from "../../src/crypto/ed25519.ts";
import type { Problem } from "../../src/config/schema.ts";

const FILE = "/etc/libvine/test.toml";
const PEER_B = generateIdentity().peerId;
const PEER_C = generateIdentity().peerId;
const WG_KEY = Buffer.from(generateIdentity().x25519Public).toString("base64");

const BASE = `# a valid config every case edits
[node]
name = "alpha"
network_id = "home-net"
state_dir = "/var/lib/libvine"
listen_port = 4100

[tun]
name = "vine0"
address = "10.42.0.1"
prefix_len = 24
mtu = 1420

[[bootstrap_peers]]
peer_id = "${PEER_B}"
address = "udp://198.18.0.40:4100"

[[allowed_peers]]
name = "beta"
peer_id = "${PEER_B}"
prefix = "10.42.1.0/24"
relay_capable = true
endpoint = "udp://198.18.0.11:4100"

[[allowed_peers]]
name = "gamma"
peer_id = "${PEER_C}"
prefix = "10.42.2.0/24"

[[allowed_peers]]
name = "laptop"
wireguard_key = "${WG_KEY}"
prefix = "10.42.9.0/24"
endpoint = "udp://laptop.example:51820"

[policy]
strict_allowlist = true
allow_relay = true
allow_signaling_upgrade = true
relay_service = false
`;

/** Replace `from` (which must occur exactly once) with `to`. */
function sub(text: string, from: string, to: string): string {
  const i = text.indexOf(from);
  if (i < 0 || text.indexOf(from, i + 1) >= 0) throw new Error(`fixture edit: ${JSON.stringify(from)} must occur exactly once`);
  return text.slice(0, i) + to + text.slice(i + from.length);
}
/** 1-based line of the first line containing `marker` (which must occur on exactly one line). */
function lineOf(text: string, marker: string): number {
  const ls = text.split("\n");
  const hits = ls.flatMap((l, i) => (l.includes(marker) ? [i + 1] : []));
  if (hits.length !== 1) throw new Error(`marker ${JSON.stringify(marker)} is on ${hits.length} lines`);
  return hits[0]!;
}
/** 1-based line of the n-th (0-based) line equal to `exact` after trimming. */
function nthLine(text: string, exact: string, n: number): number {
  const ls = text.split("\n");
  let seen = 0;
  for (let i = 0; i < ls.length; i++) if (ls[i]!.trim() === exact && seen++ === n) return i + 1;
  throw new Error(`no line ${n} equal to ${exact}`);
}

interface Case {
  rule: string;
  valid: string; // a near miss that passes
  invalid: string;
  key: string;
  line: (text: string) => number;
  message: string | RegExp;
}

const at = (marker: string) => (t: string) => lineOf(t, marker);
const header = (h: string, n = 0) => (t: string) => nthLine(t, h, n);

const CASES: Case[] = [
  {
    rule: "unknown section",
    valid: BASE,
    invalid: BASE + "\n[nodes]\nname = \"x\"\n",
    key: "nodes",
    line: at("[nodes]"),
    message: "unknown section [nodes]",
  },
  {
    rule: "array section written as a single table",
    valid: BASE,
    invalid: sub(BASE, "[[bootstrap_peers]]", "[bootstrap_peers]"),
    key: "bootstrap_peers",
    line: at("[bootstrap_peers]"),
    message: "[[bootstrap_peers]] must be an array of tables",
  },
  {
    rule: "table section given as a value",
    valid: BASE,
    invalid: "policy = 5\n" + BASE.replace(/\[policy\][^]*$/, ""),
    key: "policy",
    line: at("policy = 5"),
    message: "[policy] must be a table",
  },
  {
    rule: "unknown key",
    valid: sub(BASE, 'mtu = 1420', "mtu = 1420\n"),
    invalid: sub(BASE, "mtu = 1420", "mtu = 1420\nmtuu = 1400"),
    key: "tun.mtuu",
    line: at("mtuu"),
    message: "unknown key mtuu in [tun]",
  },
  {
    rule: "string type",
    valid: sub(BASE, 'name = "alpha"', 'name = "alpha-2"'),
    invalid: sub(BASE, 'name = "alpha"', "name = 7"),
    key: "node.name",
    line: at("name = 7"),
    message: "name must be a string, not number 7",
  },
  {
    rule: "integer type",
    valid: sub(BASE, "listen_port = 4100", "listen_port = 4_101"),
    invalid: sub(BASE, "listen_port = 4100", 'listen_port = "4100"'),
    key: "node.listen_port",
    line: at("listen_port"),
    message: 'listen_port must be an integer, not the string "4100"',
  },
  {
    rule: "integer type rejects floats",
    valid: sub(BASE, "mtu = 1420", "mtu = 1400"),
    invalid: sub(BASE, "mtu = 1420", "mtu = 1420.5"),
    key: "tun.mtu",
    line: at("mtu = 1420.5"),
    message: "mtu must be an integer",
  },
  {
    rule: "boolean type",
    valid: sub(BASE, "relay_capable = true", "relay_capable = false"),
    invalid: sub(BASE, "relay_capable = true", 'relay_capable = "yes"'),
    key: "allowed_peers[0].relay_capable",
    line: at("relay_capable"),
    message: "relay_capable must be a boolean",
  },
  {
    rule: "required key in a section",
    valid: BASE,
    invalid: sub(BASE, 'network_id = "home-net"\n', ""),
    key: "node.network_id",
    line: header("[node]"),
    message: "network_id is required in [node]",
  },
  {
    rule: "required key in an array section",
    valid: BASE,
    invalid: sub(BASE, 'prefix = "10.42.2.0/24"\n', ""),
    key: "allowed_peers[1].prefix",
    line: header("[[allowed_peers]]", 1),
    message: "prefix is required in [allowed_peers]",
  },
  {
    rule: "required section",
    valid: BASE,
    invalid: BASE.replace(/\[tun\][^[]*/, ""),
    key: "tun",
    line: () => 1,
    message: "section [tun] is required",
  },
  {
    rule: "node name not empty",
    valid: sub(BASE, 'name = "alpha"', 'name = "a"'),
    invalid: sub(BASE, 'name = "alpha"', 'name = "  "'),
    key: "node.name",
    line: at('name = "  "'),
    message: "name must not be empty",
  },
  {
    rule: "network_id 1 to 64 bytes (too long)",
    valid: sub(BASE, 'network_id = "home-net"', `network_id = "${"n".repeat(64)}"`),
    invalid: sub(BASE, 'network_id = "home-net"', `network_id = "${"n".repeat(65)}"`),
    key: "node.network_id",
    line: at("network_id"),
    message: "network_id must be 1 to 64 bytes (is 65)",
  },
  {
    rule: "network_id counts UTF-8 bytes, not characters",
    valid: sub(BASE, 'network_id = "home-net"', `network_id = "${"é".repeat(32)}"`),
    invalid: sub(BASE, 'network_id = "home-net"', `network_id = "${"é".repeat(33)}"`),
    key: "node.network_id",
    line: at("network_id"),
    message: "network_id must be 1 to 64 bytes (is 66)",
  },
  {
    rule: "network_id not empty",
    valid: sub(BASE, 'network_id = "home-net"', 'network_id = "x"'),
    invalid: sub(BASE, 'network_id = "home-net"', 'network_id = ""'),
    key: "node.network_id",
    line: at("network_id"),
    message: "(is 0)",
  },
  {
    rule: "state_dir absolute",
    valid: sub(BASE, 'state_dir = "/var/lib/libvine"', 'state_dir = "/srv/vine"'),
    invalid: sub(BASE, 'state_dir = "/var/lib/libvine"', 'state_dir = "var/lib/libvine"'),
    key: "node.state_dir",
    line: at("state_dir"),
    message: 'state_dir must be an absolute path, not "var/lib/libvine"',
  },
  {
    rule: "listen_port upper bound",
    valid: sub(BASE, "listen_port = 4100", "listen_port = 65535"),
    invalid: sub(BASE, "listen_port = 4100", "listen_port = 65536"),
    key: "node.listen_port",
    line: at("listen_port"),
    message: "listen_port must be 1 to 65535, not 65536",
  },
  {
    rule: "listen_port lower bound",
    valid: sub(BASE, "listen_port = 4100", "listen_port = 1"),
    invalid: sub(BASE, "listen_port = 4100", "listen_port = 0"),
    key: "node.listen_port",
    line: at("listen_port"),
    message: "listen_port must be 1 to 65535, not 0",
  },
  {
    rule: "tun name",
    valid: sub(BASE, 'name = "vine0"', `name = "${"v".repeat(15)}"`),
    invalid: sub(BASE, 'name = "vine0"', `name = "${"v".repeat(16)}"`),
    key: "tun.name",
    line: at("v".repeat(16)),
    message: "must be 1 to 15 characters",
  },
  {
    rule: "tun name characters",
    valid: sub(BASE, 'name = "vine0"', 'name = "vine_0.a-b"'),
    invalid: sub(BASE, 'name = "vine0"', 'name = "vine 0"'),
    key: "tun.name",
    line: at('"vine 0"'),
    message: 'tun name "vine 0"',
  },
  {
    rule: "tun address is IPv4",
    valid: sub(BASE, 'address = "10.42.0.1"', 'address = "10.42.0.254"'),
    invalid: sub(BASE, 'address = "10.42.0.1"', 'address = "10.42.0.256"'),
    key: "tun.address",
    line: at("10.42.0.256"),
    message: '"10.42.0.256" is not an IPv4 address',
  },
  {
    rule: "tun address is not the network address",
    valid: sub(BASE, 'address = "10.42.0.1"', 'address = "10.42.0.2"'),
    invalid: sub(BASE, 'address = "10.42.0.1"', 'address = "10.42.0.0"'),
    key: "tun.address",
    line: at('address = "10.42.0.0"'),
    message: "10.42.0.0 is the network address of 10.42.0.0/24",
  },
  {
    rule: "tun address is not the broadcast address",
    valid: sub(BASE, 'address = "10.42.0.1"', 'address = "10.42.0.254"'),
    invalid: sub(BASE, 'address = "10.42.0.1"', 'address = "10.42.0.255"'),
    key: "tun.address",
    line: at('address = "10.42.0.255"'),
    message: "10.42.0.255 is the broadcast address of 10.42.0.0/24",
  },
  {
    rule: "prefix_len range",
    valid: sub(BASE, "prefix_len = 24", "prefix_len = 32"),
    invalid: sub(BASE, "prefix_len = 24", "prefix_len = 33"),
    key: "tun.prefix_len",
    line: at("prefix_len"),
    message: "prefix_len must be 1 to 32, not 33",
  },
  {
    rule: "prefix_len not zero",
    valid: sub(BASE, "prefix_len = 24", "prefix_len = 31"),
    invalid: sub(BASE, "prefix_len = 24", "prefix_len = 0"),
    key: "tun.prefix_len",
    line: at("prefix_len"),
    message: "prefix_len must be 1 to 32, not 0",
  },
  {
    rule: "mtu lower bound",
    valid: sub(BASE, "mtu = 1420", "mtu = 576"),
    invalid: sub(BASE, "mtu = 1420", "mtu = 575"),
    key: "tun.mtu",
    line: at("mtu ="),
    message: "mtu must be 576 to 9000, not 575",
  },
  {
    rule: "mtu upper bound",
    valid: sub(BASE, "mtu = 1420", "mtu = 9000"),
    invalid: sub(BASE, "mtu = 1420", "mtu = 9001"),
    key: "tun.mtu",
    line: at("mtu ="),
    message: "mtu must be 576 to 9000, not 9001",
  },
  {
    rule: "peer_id and wireguard_key together",
    valid: BASE,
    invalid: sub(BASE, `wireguard_key = "${WG_KEY}"`, `wireguard_key = "${WG_KEY}"\npeer_id = "${generateIdentity().peerId}"`),
    key: "allowed_peers[2].wireguard_key",
    line: at("wireguard_key"),
    message: "give either peer_id or wireguard_key, not both",
  },
  {
    rule: "neither peer_id nor wireguard_key",
    valid: BASE,
    invalid: sub(BASE, `peer_id = "${PEER_C}"\n`, ""),
    key: "allowed_peers[1].peer_id",
    line: header("[[allowed_peers]]", 1),
    message: "peer_id (a vine peer) or wireguard_key (a plain WireGuard peer) is required",
  },
  {
    rule: "allowed peer_id is valid",
    valid: BASE,
    invalid: sub(BASE, `peer_id = "${PEER_C}"`, `peer_id = "${PEER_C.slice(0, -1)}${PEER_C.endsWith("a") ? "q" : "a"}"`),
    key: "allowed_peers[1].peer_id",
    line: at(PEER_C.slice(0, -1)),
    message: "is not a valid peer_id",
  },
  {
    rule: "wireguard_key is base64 of 32 bytes",
    valid: BASE,
    invalid: sub(BASE, `wireguard_key = "${WG_KEY}"`, `wireguard_key = "${WG_KEY.slice(0, -2)}="`),
    key: "allowed_peers[2].wireguard_key",
    line: at("wireguard_key"),
    message: "is not a WireGuard key",
  },
  {
    rule: "duplicate identity",
    valid: BASE,
    invalid: sub(BASE, `peer_id = "${PEER_C}"`, `peer_id = "${PEER_B}"`),
    key: "allowed_peers[1].peer_id",
    line: (t) => t.split("\n").findIndex((l, i) => l.includes(PEER_B) && i + 1 > nthLine(t, "[[allowed_peers]]", 1)) + 1,
    message: "duplicate peer: the same identity is already listed at allowed_peers[0]",
  },
  {
    rule: "duplicate identity across peer_id and wireguard_key (same X25519 key)",
    valid: BASE,
    invalid: sub(BASE, `wireguard_key = "${WG_KEY}"`, `wireguard_key = "${Buffer.from(x25519OfPeer(PEER_C)).toString("base64")}"`),
    key: "allowed_peers[2].wireguard_key",
    line: at("wireguard_key"),
    message: "already listed at allowed_peers[1]",
  },
  {
    rule: "peer prefix parses",
    valid: sub(BASE, 'prefix = "10.42.2.0/24"', 'prefix = "10.42.2.128/25"'),
    invalid: sub(BASE, 'prefix = "10.42.2.0/24"', 'prefix = "10.42.2.0/33"'),
    key: "allowed_peers[1].prefix",
    line: at("10.42.2.0/33"),
    message: "prefix length 33 is over 32",
  },
  {
    rule: "peer prefix has no host bits",
    valid: BASE,
    invalid: sub(BASE, 'prefix = "10.42.2.0/24"', 'prefix = "10.42.2.9/24"'),
    key: "allowed_peers[1].prefix",
    line: at("10.42.2.9/24"),
    message: "has host bits set (did you mean 10.42.2.0/24?)",
  },
  {
    rule: "peer prefix does not overlap this host's",
    valid: sub(BASE, 'prefix = "10.42.2.0/24"', 'prefix = "10.42.3.0/24"'),
    invalid: sub(BASE, 'prefix = "10.42.2.0/24"', 'prefix = "10.42.0.128/25"'),
    key: "allowed_peers[1].prefix",
    line: at("10.42.0.128/25"),
    message: "10.42.0.128/25 overlaps 10.42.0.0/24 owned by this host (tun.address)",
  },
  {
    rule: "peer prefixes do not overlap each other",
    valid: sub(BASE, 'prefix = "10.42.9.0/24"', 'prefix = "10.42.8.0/24"'),
    invalid: sub(BASE, 'prefix = "10.42.9.0/24"', 'prefix = "10.42.1.128/25"'),
    key: "allowed_peers[2].prefix",
    line: at("10.42.1.128/25"),
    message: "10.42.1.128/25 overlaps 10.42.1.0/24 owned by beta (allowed_peers[0].prefix)",
  },
  {
    rule: "endpoint form",
    valid: sub(BASE, 'endpoint = "udp://198.18.0.11:4100"', 'endpoint = "udp://host-b.lan:4100"'),
    invalid: sub(BASE, 'endpoint = "udp://198.18.0.11:4100"', 'endpoint = "198.18.0.11:4100"'),
    key: "allowed_peers[0].endpoint",
    line: at('endpoint = "198.18.0.11:4100"'),
    message: '"198.18.0.11:4100" is not an endpoint (expected udp://host:port)',
  },
  {
    rule: "endpoint port range",
    valid: sub(BASE, 'endpoint = "udp://198.18.0.11:4100"', 'endpoint = "udp://198.18.0.11:65535"'),
    invalid: sub(BASE, 'endpoint = "udp://198.18.0.11:4100"', 'endpoint = "udp://198.18.0.11:65536"'),
    key: "allowed_peers[0].endpoint",
    line: at("65536"),
    message: "port 65536 is out of range (1 to 65535)",
  },
  {
    rule: "endpoint port zero",
    valid: sub(BASE, 'endpoint = "udp://198.18.0.11:4100"', 'endpoint = "udp://198.18.0.11:1"'),
    invalid: sub(BASE, 'endpoint = "udp://198.18.0.11:4100"', 'endpoint = "udp://198.18.0.11:0"'),
    key: "allowed_peers[0].endpoint",
    line: at("198.18.0.11:0"),
    message: "port 0 is out of range",
  },
  {
    rule: "endpoint numeric host is an IPv4 address",
    valid: BASE,
    invalid: sub(BASE, 'endpoint = "udp://198.18.0.11:4100"', 'endpoint = "udp://198.18.0.311:4100"'),
    key: "allowed_peers[0].endpoint",
    line: at("198.18.0.311"),
    message: '"198.18.0.311" is not an IPv4 address',
  },
  {
    rule: "endpoint host characters",
    valid: BASE,
    invalid: sub(BASE, 'endpoint = "udp://laptop.example:51820"', 'endpoint = "udp://lap_top:51820"'),
    key: "allowed_peers[2].endpoint",
    line: at("lap_top"),
    message: '"lap_top" is not a host name or IPv4 address',
  },
  {
    rule: "duplicate peer name",
    valid: BASE,
    invalid: sub(BASE, 'name = "laptop"', 'name = "beta"'),
    key: "allowed_peers[2].name",
    line: (t) => nthLine(t, 'name = "beta"', 1),
    message: 'duplicate peer name "beta" (also at allowed_peers[0])',
  },
  {
    rule: "bootstrap peer_id is valid",
    valid: BASE,
    invalid: sub(BASE, `peer_id = "${PEER_B}"\naddress`, `peer_id = "vine1nope"\naddress`),
    key: "bootstrap_peers[0].peer_id",
    line: at("vine1nope"),
    message: '"vine1nope" is not a valid peer_id',
  },
  {
    rule: "bootstrap address is an endpoint",
    valid: sub(BASE, 'address = "udp://198.18.0.40:4100"', 'address = "udp://relay.example:4100"'),
    invalid: sub(BASE, 'address = "udp://198.18.0.40:4100"', 'address = "tcp://198.18.0.40:4100"'),
    key: "bootstrap_peers[0].address",
    line: at("tcp://"),
    message: "is not an endpoint (expected udp://host:port)",
  },
  {
    rule: "bootstrap peer is also allowed",
    valid: BASE,
    invalid: sub(BASE, `peer_id = "${PEER_B}"\naddress`, `peer_id = "${generateIdentity().peerId}"\naddress`),
    key: "bootstrap_peers[0].peer_id",
    line: (t) => nthLine(t, "[[bootstrap_peers]]", 0) + 1,
    message: "a bootstrap peer must also be in [[allowed_peers]]",
  },
  {
    rule: "TOML syntax",
    valid: BASE,
    invalid: sub(BASE, "mtu = 1420", "mtu = = 1420"),
    key: "",
    line: at("mtu = = 1420"),
    message: /^TOML syntax: /,
  },
];

/** The X25519 public key of the vine peer `peerId` (to list it again as a plain WireGuard key). */
function x25519OfPeer(peerId: string): Uint8Array {
  return x25519FromEd25519Public(decodePeerId(peerId)!);
}

function only(problems: Problem[]): Problem {
  if (problems.length !== 1) throw new Error(`expected one problem, got:\n${problems.map(formatProblem).join("\n")}`);
  return problems[0]!;
}

describe("the base fixture", () => {
  test("is valid and normalised", () => {
    const r = validateConfig(FILE, BASE);
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([]);
    const c = r.config!;
    expect(c.file).toBe(FILE);
    expect(c.node).toEqual({ name: "alpha", networkId: "home-net", stateDir: "/var/lib/libvine", listenPort: 4100 });
    expect(c.tun.prefix.text).toBe("10.42.0.0/24");
    expect(c.tun.addressText).toBe("10.42.0.1");
    expect(c.allowedPeers.map((p) => [p.name, p.prefix.text, p.relayCapable, p.wireguardOnly, p.endpoint?.text ?? null])).toEqual([
      ["beta", "10.42.1.0/24", true, false, "udp://198.18.0.11:4100"],
      ["gamma", "10.42.2.0/24", false, false, null],
      ["laptop", "10.42.9.0/24", false, true, "udp://laptop.example:51820"],
    ]);
    expect(c.allowedPeers.map((p) => p.line)).toEqual([0, 1, 2].map((n) => nthLine(BASE, "[[allowed_peers]]", n)));
    expect(c.bootstrapPeers).toHaveLength(1);
    expect(c.bootstrapPeers[0]!.line).toBe(nthLine(BASE, "[[bootstrap_peers]]", 0));
    expect(c.policy).toEqual({ strictAllowlist: true, allowRelay: true, allowSignalingUpgrade: true, relayService: false, cipher: "auto" });
  });

  test("defaults apply when optional keys are absent", () => {
    const min = `[node]\nname = "n"\nnetwork_id = "x"\n[tun]\naddress = "10.1.2.3"\nprefix_len = 16\n`;
    const r = validateConfig(FILE, min);
    expect(r.problems).toEqual([]);
    expect(r.config!.node.stateDir).toBe("/var/lib/libvine");
    expect(r.config!.node.listenPort).toBe(4100);
    expect(r.config!.tun.name).toBe("vine0");
    expect(r.config!.tun.mtu).toBe(1420);
    expect(r.config!.tun.prefix.text).toBe("10.1.0.0/16");
    expect(r.config!.policy).toEqual({ strictAllowlist: true, allowRelay: true, allowSignalingUpgrade: true, relayService: false, cipher: "auto" });
  });
});

describe.each(CASES.map((c) => [c.rule, c] as const))("rule: %s", (_rule, c) => {
  test("valid near miss passes", () => {
    const r = validateConfig(FILE, c.valid);
    expect(r.problems.map(formatProblem)).toEqual([]);
    expect(r.config).not.toBeNull();
  });

  test("invalid case names file, line and key", () => {
    const r = validateConfig(FILE, c.invalid);
    expect(r.config).toBeNull();
    const p = only(r.problems);
    expect(p.file).toBe(FILE);
    expect(p.key).toBe(c.key);
    expect(p.line).toBe(c.line(c.invalid));
    if (typeof c.message === "string") expect(p.message).toContain(c.message);
    else expect(p.message).toMatch(c.message);
    // the printed form carries all three
    expect(formatProblem(p)).toStartWith(`${FILE}:${p.line}: ${p.key ? `${p.key}: ` : ""}`);
  });
});

describe("reporting", () => {
  test("every problem is reported at once, in one pass", () => {
    let t = BASE;
    t = sub(t, "listen_port = 4100", "listen_port = 70000");
    t = sub(t, "mtu = 1420", "mtu = 100");
    t = sub(t, 'prefix = "10.42.2.0/24"', 'prefix = "10.42.2.1/24"');
    t = sub(t, 'endpoint = "udp://198.18.0.11:4100"', 'endpoint = "udp://198.18.0.11"');
    t = sub(t, "relay_service = false", "relay_service = false\nbogus = 1");
    t = sub(t, 'state_dir = "/var/lib/libvine"', 'state_dir = "relative"');
    const r = validateConfig(FILE, t, 0o100644 | 0o022);
    expect(r.config).toBeNull();
    const got = r.problems.map((p) => [p.line, p.key]);
    expect(got).toEqual(
      expect.arrayContaining([
        [0, ""],
        [lineOf(t, "listen_port"), "node.listen_port"],
        [lineOf(t, "mtu = 100"), "tun.mtu"],
        [lineOf(t, "10.42.2.1/24"), "allowed_peers[1].prefix"],
        [lineOf(t, 'endpoint = "udp://198.18.0.11"'), "allowed_peers[0].endpoint"],
        [lineOf(t, "bogus"), "policy.bogus"],
        [lineOf(t, "state_dir"), "node.state_dir"],
      ]),
    );
    expect(r.problems).toHaveLength(7);
  });

  test("a shape problem in an array section is reported once (regression: once per walk of the section)", () => {
    const t = sub(BASE.replace(/\[\[allowed_peers\]\][^]*?(?=\[policy\])/, ""), "[[bootstrap_peers]]", '[[allowed_peers]]\nname = "z"\nprefix = "10.42.7.0/24"\npeer_id = "' + PEER_C + '"\n\n[[bootstrap_peers]]');
    const single = t.replace("[[allowed_peers]]", "[allowed_peers]");
    const r = validateConfig(FILE, single);
    const shape = r.problems.filter((p) => p.key === "allowed_peers");
    expect(shape).toHaveLength(1);
    expect(shape[0]!.line).toBe(lineOf(single, "[allowed_peers]"));
    expect(shape[0]!.message).toContain("must be an array of tables");
  });

  test("a dotted key points at its own line, not its table's header (regression)", () => {
    const t = sub(BASE, "mtu = 1420", "mtu.value = 1420");
    const p = only(validateConfig(FILE, t).problems);
    expect(p.key).toBe("tun.mtu");
    expect(p.line).toBe(lineOf(t, "mtu.value"));
  });

  test("an inline array of tables points at its key's line (regression: fell back to line 1)", () => {
    const t = `# comment\n# comment\n\nallowed_peers = [\n  { name = "b", prefix = "10.42.1.0/24" },\n]\n` + BASE.replace(/\[\[allowed_peers\]\][^]*?(?=\[policy\])/, "").replace(/\[\[bootstrap_peers\]\][^[]*/, "");
    const p = only(validateConfig(FILE, t).problems);
    expect(p.key).toBe("allowed_peers[0].peer_id");
    expect(p.line).toBe(lineOf(t, "allowed_peers = ["));
  });

  test("formatProblem omits line 0 and an empty key", () => {
    expect(formatProblem({ file: "/f", line: 0, key: "", message: "m" })).toBe("/f: m");
    expect(formatProblem({ file: "/f", line: 3, key: "tun.mtu", message: "m" })).toBe("/f:3: tun.mtu: m");
  });

  test("identity_path is a warning with its line, not an error", () => {
    const t = sub(BASE, "listen_port = 4100", 'listen_port = 4100\nidentity_path = "/etc/libvine/id.key"');
    const r = validateConfig(FILE, t);
    expect(r.problems).toEqual([]);
    expect(r.config).not.toBeNull();
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatchObject({ file: FILE, line: lineOf(t, "identity_path"), key: "node.identity_path" });
    expect(r.warnings[0]!.message).toContain("identity_path is ignored");
  });

  test("strict_allowlist = false is a warning", () => {
    const t = sub(BASE, "strict_allowlist = true", "strict_allowlist = false");
    const r = validateConfig(FILE, t);
    expect(r.problems).toEqual([]);
    expect(r.config!.policy.strictAllowlist).toBe(false);
    expect(r.warnings.map((w) => [w.line, w.key])).toEqual([[lineOf(t, "strict_allowlist"), "policy.strict_allowlist"]]);
  });

  test("CRLF line endings keep line numbers right", () => {
    const t = sub(BASE, "mtu = 1420", "mtu = 1").replaceAll("\n", "\r\n");
    const p = only(validateConfig(FILE, t).problems);
    expect(p.line).toBe(lineOf(t.replaceAll("\r\n", "\n"), "mtu = 1"));
  });
});

describe("file mode", () => {
  const dir = mkdtempSync(join(tmpdir(), "vine-config-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each([
    [0o600, false],
    [0o644, false],
    [0o640, false],
    [0o666, true],
    [0o620, true],
    [0o602, true],
  ])("mode %o → problem: %p", (mode, bad) => {
    const f = join(dir, `m${mode.toString(8)}.toml`);
    writeFileSync(f, BASE);
    chmodSync(f, mode);
    const r = loadConfig(f);
    if (!bad) {
      expect(r.problems).toEqual([]);
      expect(r.config!.file).toBe(f);
    } else {
      const p = only(r.problems);
      expect(p).toMatchObject({ file: f, line: 0, key: "" });
      expect(p.message).toContain(`mode ${mode.toString(8)}`);
      expect(p.message).toContain(`chmod 600 ${f}`);
      expect(p.message).toContain(mode & 0o002 ? "writable by everyone" : "writable by its group");
    }
  });

  test("a missing file is one clear problem", () => {
    const f = join(dir, "absent.toml");
    const r = loadConfig(f);
    expect(r.config).toBeNull();
    expect(only(r.problems)).toMatchObject({ file: f, line: 0, key: "", message: "cannot read the config: no such file" });
  });

  test("a directory is a problem, not a throw", () => {
    const r = loadConfig(dir);
    expect(r.config).toBeNull();
    expect(only(r.problems).message).toStartWith("cannot read the config: ");
  });
});

describe("examples/multi-pc", () => {
  const EX = resolve(import.meta.dir, "../../examples/multi-pc");
  const hosts = ["alpha", "beta", "gamma", "relay"] as const;
  const ids = Object.fromEntries(hosts.map((h) => [h, generateIdentity().peerId]));

  test.each(hosts)("%s.toml validates once the placeholders are real peer ids", (h) => {
    let text = readFileSync(join(EX, `${h}.toml`), "utf8");
    for (const [n, id] of Object.entries(ids)) text = text.replaceAll(`REPLACE-with-${n}-peer-id`, id);
    expect(text.split("\n").filter((l) => !l.startsWith("#")).join("\n")).not.toContain("REPLACE");
    const r = validateConfig(join(EX, `${h}.toml`), text, 0o100600);
    expect(r.problems.map(formatProblem)).toEqual([]);
    expect(r.warnings).toEqual([]);
    expect(r.config!.node.name).toBe(h);
    // no host lists itself, and every other host is allowed
    expect(r.config!.allowedPeers.map((p) => p.peerId).sort()).toEqual(hosts.filter((x) => x !== h).map((x) => ids[x]).sort());
  });

  test.each(hosts)("%s.toml as shipped: every placeholder is a 'not a valid peer_id' problem on its own line", (h) => {
    const file = join(EX, `${h}.toml`);
    const text = readFileSync(file, "utf8");
    const r = validateConfig(file, text);
    expect(r.config).toBeNull();
    const want = text
      .split("\n")
      .flatMap((l, i) => (/^\s*peer_id\s*=\s*"REPLACE-with-/.test(l) ? [i + 1] : []));
    expect(want.length).toBeGreaterThanOrEqual(3);
    expect(r.problems.map((p) => p.line).sort((a, b) => a - b)).toEqual(want);
    for (const p of r.problems) {
      expect(p.message).toContain("is not a valid peer_id");
      expect(p.key).toMatch(/^(allowed|bootstrap)_peers\[\d\]\.peer_id$/);
      expect(text.split("\n")[p.line - 1]).toContain(p.message.split('"')[1]!);
    }
  });
});

describe("property: arbitrary input never throws", () => {
  const fragments = [
    "[node]", "[tun]", "[[allowed_peers]]", "[[bootstrap_peers]]", "[policy]", "[allowed_peers]", 'name = "x"', "name = 1",
    'peer_id = "vine1"', `peer_id = "${PEER_B}"`, 'prefix = "10.0.0.0/8"', 'prefix = "1.2.3.4/40"', "prefix_len = 99", 'address = "10.0.0.1"',
    'address = "udp://a:1"', "mtu = -1", "listen_port = 1e3", "relay_capable = true", "x = [1, 2]", "allowed_peers = [1]", "node = {}",
    'endpoint = "udp://::1:5"', `wireguard_key = "${WG_KEY}"`, "a.b.c = 1", '"quoted" = 2', "[a.b]", "= 3", "network_id = '''\nx\n'''",
  ];
  test("random bytes, random strings and mutated fixtures", () => {
    let n = 0;
    const start = performance.now();
    for (let i = 0; i < 3000; i++) {
      let s: string;
      switch (i % 3) {
        case 0:
          s = Buffer.from(randomBytes(1 + (i % 300))).toString("latin1");
          break;
        case 1: {
          const parts: string[] = [];
          for (let k = 0; k < 1 + (i % 20); k++) parts.push(fragments[randomBytes(1)[0]! % fragments.length]!);
          s = parts.join("\n");
          break;
        }
        default: {
          const b = Buffer.from(BASE);
          for (let k = 0; k < 1 + (i % 8); k++) b[randomBytes(2).readUInt16LE() % b.length] = randomBytes(1)[0]!;
          s = b.toString("latin1");
        }
      }
      const mode = i % 5 === 0 ? 0o100666 : undefined;
      let r;
      try {
        r = validateConfig(FILE, s, mode);
      } catch (e) {
        throw new Error(`validateConfig threw ${(e as Error).message} on ${JSON.stringify(s)}`);
      }
      // the contract: a config only when there are no problems; every problem has a line inside the file
      expect(r.config === null).toBe(r.problems.length > 0 || r.config === null);
      if (r.config) expect(r.problems).toEqual([]);
      const lines = s.split(/\r?\n/).length;
      for (const p of [...r.problems, ...r.warnings]) {
        expect(p.line).toBeGreaterThanOrEqual(0);
        expect(p.line).toBeLessThanOrEqual(lines + 1);
        expect(typeof p.message).toBe("string");
      }
      n++;
    }
    expect(n).toBe(3000);
    expect(performance.now() - start).toBeLessThan(20000);
  });
});
