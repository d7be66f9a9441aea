// `vine doctor -c FILE`: is this host ready to run vine? One line per check, and a fix for each
// failure. Checks only read (the UDP port is bound and released at once); nothing is changed.

import { defineCommand } from "citty";
import { accessSync, constants, existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { formatProblem, loadConfig, type VineConfig } from "../config/index.ts";
import { openState } from "../state/db.ts";
import { loadIdentity } from "../identity/index.ts";
import { Rtnetlink } from "../linux/netlink.ts";
import { openUdp } from "../linux/udp.ts";
import { closeFd } from "../linux/tun.ts";
import { aeadBackendInfo } from "../crypto/aead.ts";
import { formatIPv4 } from "../overlay/prefix.ts";
import { resolveHost } from "../daemon/resolve.ts";
import { checkPidfile } from "../daemon/pidfile.ts";
import { printJson, formatArg } from "./common.ts";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
  warn?: boolean; // informative: does not fail the doctor
}

export function runChecks(configPath: string): Check[] {
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);

  add(
    existsSync("/dev/net/tun")
      ? { name: "tun device", ok: true, detail: "/dev/net/tun present" }
      : { name: "tun device", ok: false, detail: "/dev/net/tun is missing", fix: "load the module: `modprobe tun` (in a container, pass the device: --device /dev/net/tun)" },
  );
  add(capNetAdmin());

  const { config, problems } = loadConfig(configPath);
  if (!config || problems.length > 0) {
    add({
      name: "config",
      ok: false,
      detail: problems.length ? `${problems.length} problem(s), first: ${formatProblem(problems[0]!)}` : `cannot read ${configPath}`,
      fix: `run \`vine config validate -c ${configPath}\` for the full list`,
    });
    return checks;
  }
  add({ name: "config", ok: true, detail: `${configPath} is valid (${config.node.name}, ${config.allowedPeers.length} peers)` });

  const running = checkPidfile(config.node.stateDir);
  const daemonUp = running.state === "running";
  if (daemonUp) add({ name: "daemon", ok: true, warn: true, detail: `a vine daemon already runs (pid ${(running as { pid: number }).pid}); port and interface checks reflect it` });

  checks.push(...stateChecks(config));
  if (!daemonUp) {
    checks.push(portCheck(config), interfaceCheck(config));
  }
  checks.push(routeCheck(config, daemonUp));
  for (const b of config.bootstrapPeers) {
    const ip = resolveHost(b.endpoint.host);
    add(
      ip !== null
        ? { name: "bootstrap peer", ok: true, detail: `${b.endpoint.text} resolves to ${formatIPv4(ip)}` }
        : { name: "bootstrap peer", ok: false, detail: `${b.endpoint.text} does not resolve`, fix: "fix the name or use an IPv4 address in [[bootstrap_peers]] address" },
    );
  }
  const aead = aeadBackendInfo();
  add({
    name: "crypto backend",
    ok: true,
    warn: aead.active !== "libcrypto",
    detail: aead.active === "libcrypto" ? `libcrypto ${aead.libcrypto} (ChaCha20-Poly1305, native)` : `noble (pure JS fallback, slower): ${aead.libcrypto ?? "libcrypto unavailable"}`,
    fix: aead.active === "libcrypto" ? undefined : "install OpenSSL 3 (libcrypto.so.3, Debian package libssl3) for native speed",
  });
  return checks;
}

function capNetAdmin(): Check {
  // CAP_NET_ADMIN is bit 12 of the effective capability set.
  const status = readFileSync("/proc/self/status", "utf8");
  const eff = /^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? "0";
  const has = (BigInt(`0x${eff}`) >> 12n) & 1n;
  return has
    ? { name: "privileges", ok: true, detail: "CAP_NET_ADMIN present" }
    : { name: "privileges", ok: false, detail: "CAP_NET_ADMIN missing: vine cannot create its TUN or routes", fix: "run as root, or grant it: `setcap cap_net_admin+ep $(command -v vine)` (systemd: AmbientCapabilities=CAP_NET_ADMIN)" };
}

function stateChecks(config: VineConfig): Check[] {
  const dir = config.node.stateDir;
  const db = join(dir, "vine.db");
  if (!existsSync(db)) {
    return [{ name: "identity", ok: false, detail: `no state database at ${db}`, fix: `run \`vine identity init --state-dir ${dir}\`` }];
  }
  const out: Check[] = [];
  const mode = statSync(db).mode & 0o777;
  const dmode = statSync(dir).mode & 0o777;
  out.push(
    mode & 0o077
      ? { name: "state permissions", ok: false, detail: `${db} is mode ${mode.toString(8)}: others can read the identity`, fix: `chmod 600 ${db}; chmod 700 ${dir}` }
      : dmode & 0o077
        ? { name: "state permissions", ok: false, detail: `${dir} is mode ${dmode.toString(8)}`, fix: `chmod 700 ${dir}` }
        : { name: "state permissions", ok: true, detail: `${db} 0600, ${dir} 0700` },
  );
  try {
    accessSync(dir, constants.W_OK);
    const store = openState(dir);
    try {
      const ic = store.sqlite.query("PRAGMA integrity_check").get() as { integrity_check: string };
      out.push(
        ic.integrity_check === "ok"
          ? { name: "state database", ok: true, detail: `${db} writable, integrity ok` }
          : { name: "state database", ok: false, detail: `integrity check: ${ic.integrity_check}`, fix: `restore ${db} from backup, or move it away and re-enroll (\`vine identity init\`)` },
      );
      const id = loadIdentity(store);
      out.push(
        id
          ? { name: "identity", ok: true, detail: `${id.peerId} (fingerprint ${id.fingerprint})` }
          : { name: "identity", ok: false, detail: "the database holds no identity", fix: `run \`vine identity init --state-dir ${dir}\`` },
      );
    } finally {
      store.close();
    }
  } catch (e) {
    out.push({ name: "state database", ok: false, detail: `${db}: ${(e as Error).message}`, fix: `check that ${dir} is on a writable, not full, filesystem` });
  }
  return out;
}

function portCheck(config: VineConfig): Check {
  try {
    const fd = openUdp({ port: config.node.listenPort });
    closeFd(fd);
    return { name: "listen port", ok: true, detail: `udp/${config.node.listenPort} is free` };
  } catch (e) {
    return { name: "listen port", ok: false, detail: `udp/${config.node.listenPort}: ${(e as Error).message}`, fix: "stop what uses it (`ss -ulpn`), or set [node] listen_port" };
  }
}

function interfaceCheck(config: VineConfig): Check {
  try {
    const nl = new Rtnetlink();
    try {
      return nl.linkExists(config.tun.name)
        ? { name: "interface", ok: false, detail: `${config.tun.name} already exists`, fix: `pick another [tun] name, or remove it: \`ip link del ${config.tun.name}\` if it is a leftover` }
        : { name: "interface", ok: true, detail: `${config.tun.name} is free` };
    } finally {
      nl.close();
    }
  } catch (e) {
    return { name: "interface", ok: false, detail: `cannot query links: ${(e as Error).message}`, fix: "run as root" };
  }
}

function routeCheck(config: VineConfig, daemonUp: boolean): Check {
  try {
    const nl = new Rtnetlink();
    try {
      const prefixes = [config.tun.prefix, ...config.allowedPeers.map((p) => p.prefix)];
      const clashes: string[] = [];
      for (const r of nl.listRoutes()) {
        if (r.table !== 254 || r.prefixLen === 0) continue;
        if (daemonUp && r.ifname === config.tun.name) continue;
        for (const p of prefixes) {
          const len = Math.min(p.len, r.prefixLen);
          const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
          if (((p.addr & mask) >>> 0) === ((r.dst & mask) >>> 0)) clashes.push(`${formatIPv4(r.dst)}/${r.prefixLen} dev ${r.ifname ?? "?"} overlaps ${p.text}`);
        }
      }
      return clashes.length === 0
        ? { name: "routes", ok: true, detail: `no host route overlaps the ${prefixes.length} overlay prefixes` }
        : { name: "routes", ok: false, detail: clashes.join("; "), fix: "choose overlay prefixes that no local network uses, or remove the conflicting routes" };
    } finally {
      nl.close();
    }
  } catch (e) {
    return { name: "routes", ok: false, detail: `cannot list routes: ${(e as Error).message}`, fix: "run as root" };
  }
}

export const doctor = defineCommand({
  meta: { name: "doctor", description: "Check that this host is ready to run vine: one line per check, with a fix for each failure" },
  args: { config: { type: "string", alias: "c", description: "config file", default: "/etc/libvine/vine.toml" }, ...formatArg },
  run({ args }) {
    const checks = runChecks(String(args.config));
    const failed = checks.filter((c) => !c.ok);
    if (args.format === "json") printJson({ ok: failed.length === 0, checks });
    else {
      for (const c of checks) {
        const tag = !c.ok ? "FAIL" : c.warn ? "note" : "ok  ";
        console.log(`${tag}  ${c.name.padEnd(18)} ${c.detail}`);
        if (!c.ok && c.fix) console.log(`      ${"".padEnd(18)} fix: ${c.fix}`);
      }
      console.log(failed.length === 0 ? "ready" : `${failed.length} check(s) failed`);
    }
    if (failed.length > 0) process.exitCode = 1;
  },
});
