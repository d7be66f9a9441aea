// The CLI as a subprocess (`bun src/main.ts ...`): version and help for every group, unknown commands
// and options, the identity commands in every format, and `config validate | init`.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { validateConfig } from "../../src/config/index.ts";
import { decodePeerId, networkPresharedKey, x25519FromEd25519Public } from "../../src/identity/index.ts";
import { VERSION } from "../../src/version.ts";

const ROOT = resolve(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const MAIN = join(ROOT, "src/main.ts");
const tmp = mkdtempSync(join(tmpdir(), "vine-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// A colour-capable environment: help must still be plain text when stdout is a pipe.
const env: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !["NO_COLOR", "TEST", "CI", "FORCE_COLOR", "VINE_DEBUG"].includes(k)) env[k] = v;
env.TERM = "xterm-256color";

interface Run {
  code: number;
  out: string;
  err: string;
}
async function vine(args: string[], opts: { umask?: number } = {}): Promise<Run> {
  const cmd = opts.umask === undefined ? [BUN, MAIN, ...args] : ["sh", "-c", `umask ${opts.umask.toString(8)} && exec "$@"`, "sh", BUN, MAIN, ...args];
  const p = Bun.spawn(cmd, { cwd: tmp, env, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}
const b64len = (s: string) => Buffer.from(s, "base64").length;
const B64_32 = /^[A-Za-z0-9+/]{43}=$/;
const ESC = "\x1b[";

describe("version, help, unknown commands", () => {
  test("--version and -v print the version only", async () => {
    const [a, b] = await Promise.all([vine(["--version"]), vine(["-v"])]);
    for (const r of [a, b]) {
      expect(r.code).toBe(0);
      expect(r.out).toBe(`vine ${VERSION}\n`);
      expect(r.err).toBe("");
    }
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+$/);
  });

  test("--help and no arguments list every group, as plain text on a pipe", async () => {
    const [h, none] = await Promise.all([vine(["--help"]), vine([])]);
    for (const r of [h, none]) {
      expect(r.code).toBe(0);
      expect(r.out).not.toContain(ESC);
      expect(r.out).toContain("USAGE vine ");
      for (const g of ["identity", "config", "daemon", "status", "peers", "routes", "sessions", "counters", "ping", "snapshot", "doctor"]) expect(r.out).toMatch(new RegExp(`^\\s+${g}\\s{2,}\\S`, "m"));
    }
  });

  const GROUPS: [string[], string, string[]][] = [
    [["identity"], "Create and show this host's identity", ["init", "show", "fingerprint", "export-public"]],
    [["config"], "Validate and create configuration files", ["validate", "init"]],
    [["daemon"], "daemon", ["run"]],
    [["status"], "Identity, network, prefix", ["--format"]],
    [["peers"], "Allowed peers", ["--format"]],
    [["routes"], "Overlay routes", ["--format"]],
    [["sessions"], "One session per allowed peer", ["--format"]],
    [["counters"], "counters", ["--format"]],
    [["ping"], "Probe an overlay address", []],
    [["snapshot"], "snapshots", []],
    [["doctor"], "Check that this host is ready", []],
    [["identity", "init"], "Create this host's identity", ["--state-dir", "--force", "--format"]],
    [["identity", "show"], "never the secret", ["--state-dir", "--config"]],
    [["identity", "fingerprint"], "fingerprint", ["--state-dir"]],
    [["identity", "export-public"], "WireGuard [Peer]", ["text|json|toml|wireguard"]],
    [["config", "validate"], "every problem at once", ["--config", "--format"]],
    [["config", "init"], "mode 0600", ["--output", "--name", "--network-id", "--address", "--force"]],
  ];
  test.each(GROUPS)("%p --help", async (path, description, mentions) => {
    for (const flag of ["--help", "-h"]) {
      const r = await vine([...path, flag]);
      expect(r.code).toBe(0);
      expect(r.err).toBe("");
      expect(r.out).not.toContain(ESC);
      expect(r.out).toContain(`USAGE vine ${path.join(" ")}`);
      expect(r.out).toContain(description);
      for (const m of mentions) expect(r.out).toContain(m);
    }
  });

  test("an unknown command fails with a clear message", async () => {
    const [top, sub] = await Promise.all([vine(["bogus"]), vine(["identity", "bogus"])]);
    for (const r of [top, sub]) {
      expect(r.code).toBe(2);
      expect(r.out).toBe("");
      expect(r.err).toContain("Unknown command bogus");
      expect(r.err).toContain("--help");
      expect(r.err).not.toContain(ESC);
      expect(r.err.trim().split("\n")).toHaveLength(1);
    }
  });

  test("an unknown option fails instead of being ignored", async () => {
    const r = await vine(["identity", "show", "--statedir", join(tmp, "x")]);
    expect(r.code).toBe(2);
    expect(r.err).toBe("vine: unknown option --statedir; see `vine identity show --help`\n");
    const r2 = await vine(["config", "validate", "--confg=/x"]);
    expect(r2.code).toBe(2);
    expect(r2.err).toContain("unknown option --confg");
  });
});

describe("identity", () => {
  const state = join(tmp, "state-a");
  let peerId = "";
  let fingerprint = "";
  let x25519b64 = "";

  beforeAll(async () => {
    const r = await vine(["identity", "init", "--state-dir", state], { umask: 0o022 });
    expect(r.code).toBe(0);
    expect(r.out).toContain(`created identity in ${join(state, "vine.db")}`);
    peerId = /peer_id\s+(vine1[a-z2-7]{55})/.exec(r.out)![1]!;
    fingerprint = /fingerprint\s+([0-9a-f-]{19})/.exec(r.out)![1]!;
  });

  test("init creates a 0700 directory and a 0600 database with umask 022", () => {
    expect(statSync(state).mode & 0o777).toBe(0o700);
    expect(statSync(join(state, "vine.db")).mode & 0o777).toBe(0o600);
  });

  test("init --format json", async () => {
    const dir = join(tmp, "state-json");
    const r = await vine(["identity", "init", "--state-dir", dir, "--format", "json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(Object.keys(j).sort()).toEqual(["fingerprint", "peer_id", "replaced", "state_dir"]);
    expect(decodePeerId(j.peer_id)).not.toBeNull();
    expect(j.state_dir).toBe(dir);
    expect(j.replaced).toBeNull();
  });

  test("a second init without --force fails and keeps the identity; --force replaces it", async () => {
    const dir = join(tmp, "state-force");
    const first = JSON.parse((await vine(["identity", "init", "--state-dir", dir, "--format", "json"])).out);
    const again = await vine(["identity", "init", "--state-dir", dir]);
    expect(again.code).toBe(1);
    expect(again.out).toBe("");
    expect(again.err).toBe(`vine: an identity already exists in ${join(dir, "vine.db")} (${first.peer_id}); use --force to replace it (every peer must then update its allowlist)\n`);
    const still = JSON.parse((await vine(["identity", "show", "--state-dir", dir, "--format", "json"])).out);
    expect(still.peer_id).toBe(first.peer_id);
    const forced = await vine(["identity", "init", "--state-dir", dir, "--force", "--format", "json"]);
    expect(forced.code).toBe(0);
    const fj = JSON.parse(forced.out);
    expect(fj.replaced).toBe(first.peer_id);
    expect(fj.peer_id).not.toBe(first.peer_id);
  });

  test("show, text and json, agree and never print the secret", async () => {
    const [text, json] = await Promise.all([vine(["identity", "show", "--state-dir", state]), vine(["identity", "show", "--state-dir", state, "--format", "json"])]);
    expect(text.code).toBe(0);
    expect(json.code).toBe(0);
    const j = JSON.parse(json.out);
    expect(Object.keys(j).sort()).toEqual(["created_at", "fingerprint", "peer_id", "public_key", "x25519_public"]);
    expect(j.peer_id).toBe(peerId);
    expect(j.fingerprint).toBe(fingerprint);
    const pub = decodePeerId(peerId)!;
    expect(j.public_key).toBe(Buffer.from(pub).toString("base64"));
    expect(j.x25519_public).toBe(Buffer.from(x25519FromEd25519Public(pub)).toString("base64"));
    expect(Date.parse(j.created_at)).toBeGreaterThan(Date.now() - 600_000);
    x25519b64 = j.x25519_public;
    for (const [k, v] of Object.entries(j)) expect(text.out).toMatch(new RegExp(`^${k}\\s+${String(v).replace(/[+/]/g, "\\$&")}$`, "m"));
    // the seed, read straight from the database
    const { Database } = await import("bun:sqlite");
    const db = new Database(join(state, "vine.db"), { readonly: true });
    const seed = (db.query("SELECT secret_seed FROM identity").get() as { secret_seed: Uint8Array }).secret_seed;
    db.close();
    const forms = [Buffer.from(seed).toString("hex"), Buffer.from(seed).toString("base64"), Buffer.from(seed).toString("base64url")];
    for (const o of [text.out, json.out, text.err, json.err]) for (const f of forms) expect(o.toLowerCase()).not.toContain(f.toLowerCase());
  });

  test("fingerprint, text and json", async () => {
    const [t, j] = await Promise.all([vine(["identity", "fingerprint", "--state-dir", state]), vine(["identity", "fingerprint", "--state-dir", state, "--format", "json"])]);
    expect(t.out).toBe(`${fingerprint}\n`);
    expect(JSON.parse(j.out)).toEqual({ fingerprint, peer_id: peerId });
  });

  test("bad --format and a missing state dir fail clearly", async () => {
    const [f1, f2, missing] = await Promise.all([
      vine(["identity", "show", "--state-dir", state, "--format", "xml"]),
      vine(["identity", "export-public", "--state-dir", state, "--format", "yaml"]),
      vine(["identity", "show", "--state-dir", join(tmp, "nope")]),
    ]);
    expect(f1.code).toBe(1);
    expect(f1.err).toBe('vine: --format must be text or json, not "xml"\n');
    expect(f2.code).toBe(1);
    expect(f2.err).toBe('vine: --format must be text, json, toml or wireguard, not "yaml"\n');
    expect(missing.code).toBe(1);
    expect(missing.err).toBe(`vine: no state database at ${join(tmp, "nope", "vine.db")}: run \`vine identity init --state-dir ${join(tmp, "nope")}\`\n`);
  });

  test("export-public text and json (no config)", async () => {
    const [t, j] = await Promise.all([vine(["identity", "export-public", "--state-dir", state]), vine(["identity", "export-public", "--state-dir", state, "--format", "json"])]);
    expect(t.code).toBe(0);
    expect(t.out).toBe(`this-host ${peerId}\nfingerprint ${fingerprint}\n`);
    const o = JSON.parse(j.out);
    expect(o).toMatchObject({ name: "this-host", peer_id: peerId, fingerprint, prefix: null, listen_port: null });
    expect(b64len(o.public_key)).toBe(32);
    expect(b64len(o.x25519_public)).toBe(32);
  });

  describe("with a config (-c)", () => {
    const cfgA = join(tmp, "a.toml");
    const stateB = join(tmp, "state-b");
    let peerB = "";
    beforeAll(async () => {
      const w = await vine(["config", "init", "-o", cfgA, "--name", "alpha", "--network-id", "lab-net", "--address", "10.42.5.1/24"]);
      expect(w.code).toBe(0);
      peerB = JSON.parse((await vine(["identity", "init", "--state-dir", stateB, "--format", "json"])).out).peer_id;
    });

    test("toml output embedded in another host's config validates", async () => {
      const r = await vine(["identity", "export-public", "-c", cfgA, "--state-dir", state, "--format", "toml"]);
      expect(r.code).toBe(0);
      expect(r.out).toContain(`name = "alpha"\npeer_id = "${peerId}"\nprefix = "10.42.5.0/24"\n`);
      const hostB = `[node]\nname = "beta"\nnetwork_id = "lab-net"\n\n[tun]\naddress = "10.42.6.1"\nprefix_len = 24\n\n${r.out}`;
      const v = validateConfig("/b.toml", hostB);
      expect(v.problems).toEqual([]);
      expect(v.config!.allowedPeers).toHaveLength(1);
      expect(v.config!.allowedPeers[0]!.peerId).toBe(peerId);
      expect(v.config!.allowedPeers[0]!.prefix.text).toBe("10.42.5.0/24");
    });

    test("toml output without a config has a prefix placeholder that validation points at", async () => {
      const r = await vine(["identity", "export-public", "--state-dir", state, "--format", "toml"]);
      const hostB = `[node]\nname = "beta"\nnetwork_id = "lab-net"\n\n[tun]\naddress = "10.42.6.1"\nprefix_len = 24\n\n${r.out}`;
      const v = validateConfig("/b.toml", hostB);
      expect(v.problems).toHaveLength(1);
      expect(v.problems[0]!.key).toBe("allowed_peers[0].prefix");
      expect(v.problems[0]!.line).toBe(hostB.split("\n").findIndex((l) => l.startsWith("prefix = ")) + 1);
    });

    test("wireguard output: PublicKey and PresharedKey are base64 of 32 bytes, AllowedIPs is the prefix", async () => {
      const [withCfg, without] = await Promise.all([
        vine(["identity", "export-public", "-c", cfgA, "--state-dir", state, "--format", "wireguard"]),
        vine(["identity", "export-public", "--state-dir", state, "--format", "wireguard"]),
      ]);
      expect(withCfg.code).toBe(0);
      const kv = Object.fromEntries(withCfg.out.split("\n").filter((l) => /^\w+ = /.test(l)).map((l) => l.split(" = ") as [string, string]));
      expect(withCfg.out).toContain("[Peer]\n");
      expect(kv.PublicKey).toMatch(B64_32);
      expect(b64len(kv.PublicKey!)).toBe(32);
      expect(kv.PublicKey).toBe(x25519b64 || Buffer.from(x25519FromEd25519Public(decodePeerId(peerId)!)).toString("base64"));
      expect(kv.PresharedKey).toMatch(B64_32);
      expect(b64len(kv.PresharedKey!)).toBe(32);
      expect(kv.PresharedKey).toBe(Buffer.from(networkPresharedKey("lab-net")).toString("base64"));
      expect(kv.AllowedIPs).toBe("10.42.5.0/24");
      // without a config there is no network_id: no PresharedKey line, a hint instead
      expect(without.out).toMatch(/^PublicKey = [A-Za-z0-9+/]{43}=$/m);
      expect(without.out).not.toMatch(/^PresharedKey/m);
      expect(without.out).toContain("# PresharedKey: pass -c FILE");
    });

    test("json output carries the config's prefix and port", async () => {
      const r = await vine(["identity", "export-public", "-c", cfgA, "--state-dir", state, "--format", "json"]);
      expect(JSON.parse(r.out)).toMatchObject({ name: "alpha", peer_id: peerId, prefix: "10.42.5.0/24", listen_port: 4100 });
    });

    test("an invalid config is refused", async () => {
      const bad = join(tmp, "bad-for-export.toml");
      writeFileSync(bad, "[node]\n", { mode: 0o600 });
      const r = await vine(["identity", "export-public", "-c", bad, "--state-dir", state]);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`the config ${bad} is invalid`);
    });

    test("config init writes a 0600 file (umask 0) that validates once a peer is added", async () => {
      const f = join(tmp, "init-umask0.toml");
      const w = await vine(["config", "init", "-o", f, "--name", "gamma", "--address", "10.42.7.1/24"], { umask: 0 });
      expect(w.code).toBe(0);
      expect(w.out).toBe(`wrote ${f}; edit it, then: vine config validate -c ${f}\n`);
      expect(statSync(f).mode & 0o777).toBe(0o600);
      const block = (await vine(["identity", "export-public", "--state-dir", stateB, "--format", "toml"])).out.replace("REPLACE-with-the-prefix-this-host-owns", "10.42.8.0/24");
      writeFileSync(f, readFileSync(f, "utf8") + "\n" + block);
      const v = await vine(["config", "validate", "-c", f, "--format", "json"]);
      expect(v.code).toBe(0);
      const j = JSON.parse(v.out);
      expect(j.ok).toBe(true);
      expect(j.summary).toEqual({ node: "gamma", prefix: "10.42.7.0/24", peers: 1, bootstrap_peers: 0 });
      expect(readFileSync(f, "utf8")).toContain(peerB);
    });

    test("config init refuses to overwrite without --force, and --force makes an open file private", async () => {
      const f = join(tmp, "init-twice.toml");
      writeFileSync(f, "old");
      chmodSync(f, 0o644);
      const no = await vine(["config", "init", "-o", f]);
      expect(no.code).toBe(1);
      expect(no.err).toBe(`vine: ${f} exists; use --force to overwrite it\n`);
      expect(readFileSync(f, "utf8")).toBe("old");
      const yes = await vine(["config", "init", "-o", f, "--force"]);
      expect(yes.code).toBe(0);
      expect(statSync(f).mode & 0o777).toBe(0o600);
      expect(validateConfig(f, readFileSync(f, "utf8")).problems).toEqual([]);
    });

    test("config init rejects a bad --address and a missing directory", async () => {
      const [a, b, c] = await Promise.all([
        vine(["config", "init", "-o", join(tmp, "x1.toml"), "--address", "10.42.0.1"]),
        vine(["config", "init", "-o", join(tmp, "x2.toml"), "--address", "10.42.0.300/24"]),
        vine(["config", "init", "-o", join(tmp, "no-such-dir", "x.toml")]),
      ]);
      for (const r of [a, b]) {
        expect(r.code).toBe(1);
        expect(r.err).toContain("--address must be a host address with a prefix length, like 10.42.0.1/24");
      }
      expect(c.code).toBe(1);
      expect(c.err).toContain(`directory ${join(tmp, "no-such-dir")} does not exist`);
    });

    test("config init refuses a network address as this host's address", async () => {
      const f = join(tmp, "x3.toml");
      const r = await vine(["config", "init", "-o", f, "--address", "10.42.0.0/24"]);
      expect(r.code).toBe(1);
      expect(r.err).toContain("does not validate");
      expect(r.err).toContain("network address");
    });
  });
});

describe("config validate", () => {
  const good = join(tmp, "good.toml");
  const bad = join(tmp, "bad.toml");
  const GOOD = `[node]\nname = "n1"\nnetwork_id = "net"\n\n[tun]\naddress = "10.42.3.1"\nprefix_len = 24\n`;
  const BAD = `[node]\nname = "n1"\nnetwork_id = "net"\nlisten_port = 0\n\n[tun]\naddress = "10.42.3.1"\nprefix_len = 24\nmtu = 99\n`;
  beforeAll(() => {
    writeFileSync(good, GOOD, { mode: 0o600 });
    writeFileSync(bad, BAD, { mode: 0o600 });
  });

  test("text: ok on stdout, exit 0", async () => {
    const r = await vine(["config", "validate", "-c", good]);
    expect(r.code).toBe(0);
    expect(r.err).toBe("");
    expect(r.out).toBe(`${good}: ok — node n1, owns 10.42.3.0/24, 0 allowed peer(s), 0 bootstrap peer(s)\n`);
  });

  test("text: every problem with file:line: key on stderr, exit 1", async () => {
    const r = await vine(["config", "validate", "--config", bad]);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    const lines = r.err.trim().split("\n");
    expect(lines).toEqual([
      `${bad}:4: node.listen_port: listen_port must be 1 to 65535, not 0`,
      `${bad}:9: tun.mtu: mtu must be 576 to 9000, not 99`,
      `2 problem(s) in ${bad}`,
    ]);
  });

  test("json: ok, problems with line and key, summary; exit code follows", async () => {
    const [g, b] = await Promise.all([vine(["config", "validate", "-c", good, "--format", "json"]), vine(["config", "validate", "-c", bad, "--format", "json"])]);
    expect(g.code).toBe(0);
    expect(JSON.parse(g.out)).toEqual({ ok: true, problems: [], warnings: [], summary: { node: "n1", prefix: "10.42.3.0/24", peers: 0, bootstrap_peers: 0 } });
    expect(b.code).toBe(1);
    const j = JSON.parse(b.out);
    expect(j.ok).toBe(false);
    expect(j.summary).toBeNull();
    expect(j.problems.map((p: { line: number; key: string; file: string }) => [p.file, p.line, p.key])).toEqual([
      [bad, 4, "node.listen_port"],
      [bad, 9, "tun.mtu"],
    ]);
  });

  test("warnings go to stderr and do not fail", async () => {
    const f = join(tmp, "warn.toml");
    writeFileSync(f, GOOD.replace('network_id = "net"\n', 'network_id = "net"\nidentity_path = "/x"\n'), { mode: 0o600 });
    const r = await vine(["config", "validate", "-c", f]);
    expect(r.code).toBe(0);
    expect(r.err).toBe(`warning: ${f}:4: node.identity_path: identity lives in the state database (state_dir); identity_path is ignored\n`);
  });

  test("a group-writable file and a missing file fail", async () => {
    const f = join(tmp, "open.toml");
    writeFileSync(f, GOOD);
    chmodSync(f, 0o664);
    const [open, missing] = await Promise.all([vine(["config", "validate", "-c", f]), vine(["config", "validate", "-c", join(tmp, "missing.toml")])]);
    expect(open.code).toBe(1);
    expect(open.err).toContain(`${f}: the config is writable by its group (mode 664)`);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain(`${join(tmp, "missing.toml")}: cannot read the config: no such file`);
  });
});

describe("vine sessions table", () => {
  const row = (peer_id: string, name: string, via: string | null) => ({
    peer_id, name, prefix: "10.42.9.0/24", path: (via ? "relay" : "direct") as "relay" | "direct", endpoint: via ? null : "198.18.0.9:4100",
    via, rtt_ms: 1.5, cipher: "aes-256-gcm" as const, last_handshake: null, rx_bytes: 0, tx_bytes: 0, rx_packets: 0, tx_packets: 0,
  });
  test("VIA names the relay when it is an allowed peer, else the start of its peer_id", async () => {
    const { sessionsText } = await import("../../src/cli/ops.ts");
    const text = sessionsText([row("vine1relayrelayrelay", "hub", null), row("vine1gammagamma", "gamma", "vine1relayrelayrelay"), row("vine1deltadelta", "delta", "vine1unknownunknown")]);
    const lines = text.split("\n");
    expect(lines.find((l) => l.startsWith("gamma"))).toMatch(/ relay +- +hub /);
    expect(lines.find((l) => l.startsWith("delta"))).toContain("vine1unknownun…");
  });
});
