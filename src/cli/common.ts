// Shared CLI pieces: common flags, output, errors, and finding the state directory.

import { formatProblem, loadConfig, type VineConfig } from "../config/index.ts";
import { DEFAULT_STATE_DIR } from "../state/db.ts";

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
