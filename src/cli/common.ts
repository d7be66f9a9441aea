// Shared CLI pieces: common flags, output, errors, and finding the state directory.

import { formatProblem, loadConfig, type VineConfig } from "../config/index.ts";
import { DEFAULT_STATE_DIR } from "../state/db.ts";
import { controlSocketPath } from "../daemon/control.ts";

export type Format = "text" | "json";

export const formatArg = {
  format: { type: "string", description: "output format: text or json", default: "text", valueHint: "text|json" },
} as const;

export const stateArgs = {
  config: { type: "string", alias: "c", description: "config file (its [node] state_dir is used)", valueHint: "FILE" },
  "state-dir": { type: "string", description: `state directory (default ${DEFAULT_STATE_DIR})`, valueHint: "DIR" },
} as const;

/** An operator error: one clear line on stderr, exit code 1. */
export class CliFail extends Error {}

export function fail(message: string): never {
  throw new CliFail(message);
}

export function checkFormat(f: unknown): Format {
  if (f !== "text" && f !== "json") fail(`--format must be text or json, not ${JSON.stringify(f)}`);
  return f;
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + "\n");
}

/** A config that must be valid: otherwise every problem is printed and the command fails. */
export function requireConfig(path: string): VineConfig {
  const { config, problems } = loadConfig(path);
  if (!config) fail(`invalid config:\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`);
  return config;
}

/** --state-dir, else the config's state_dir (-c), else the default. */
export function resolveStateDir(args: { config?: string; "state-dir"?: string }): string {
  if (args["state-dir"]) return String(args["state-dir"]);
  if (args.config) return requireConfig(String(args.config)).node.stateDir;
  return DEFAULT_STATE_DIR;
}

/**
 * A failed control request as one line that says what is wrong: no daemon (nothing listens on the
 * control socket), a stale socket, no permission, a timeout, or the running daemon's own answer
 * (for example "no route to 10.99.0.1: no allowed peer owns it"), which is passed on as it is.
 */
export function daemonError(stateDir: string, e: unknown, what: string): string {
  const err = e as NodeJS.ErrnoException;
  const sock = controlSocketPath(stateDir);
  switch (err?.code) {
    case "ENOENT":
      return `no vine daemon is running for ${stateDir} (no control socket ${sock}): start it with \`vine daemon start -c FILE\`, ${what} needs it`;
    case "ECONNREFUSED":
      return `no vine daemon answers on ${sock} (the daemon stopped or crashed and left its socket): start it with \`vine daemon start -c FILE\`, ${what} needs it`;
    case "EACCES":
    case "EPERM":
      return `permission denied on ${sock}: run \`vine ${what}\` as root (or as the daemon's user)`;
    case "ENOTDIR":
      return `${stateDir} is not a state directory (${sock} cannot exist there): check --state-dir or the config's state_dir`;
  }
  if (err?.code) return `cannot reach the daemon on ${sock}: ${err.message}`;
  return String(err?.message ?? e);
}
