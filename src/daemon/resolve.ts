// Endpoint host resolution. IPv4 literals need nothing; names are resolved once, synchronously,
// with the system resolver (getent), because endpoints are read at start and on reload only.

import { parseIPv4 } from "../overlay/prefix.ts";

export function resolveHost(host: string): number | null {
  const lit = parseIPv4(host);
  if (lit !== null) return lit;
  try {
    const r = Bun.spawnSync(["getent", "ahostsv4", host], { stdout: "pipe", stderr: "ignore" });
    const first = r.stdout.toString().split(/\s+/)[0] ?? "";
    return parseIPv4(first);
  } catch {
    return null;
  }
}
