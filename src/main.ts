// vine: one executable for the daemon and every operator command.
//   vine <group> <command> [flags]      vine --help      vine --version

import { defineCommand, renderUsage, runCommand } from "citty";
import { VERSION } from "./version.ts";
import { CliFail } from "./cli/common.ts";
import { identity } from "./cli/identity.ts";
import { config } from "./cli/config.ts";
import { daemon } from "./cli/daemon.ts";
import { doctor } from "./cli/doctor.ts";
import { counters, peers, ping, routes, sessions, snapshot, status } from "./cli/ops.ts";

const main = defineCommand({
  meta: { name: "vine", version: VERSION, description: "Linux overlay VPN: WireGuard-compatible sessions, NAT traversal, relay fallback, SQLite state" },
  subCommands: { identity, config, daemon, status, peers, routes, sessions, counters, ping, snapshot, doctor },
});

async function resolveTarget(argv: string[]): Promise<[typeof main, typeof main | undefined, string[]]> {
  // The command whose usage to show: walk the subcommands named on the line.
  let cmd = main as typeof main;
  let parent: typeof main | undefined;
  const names: string[] = [];
  for (const a of argv) {
    if (a.startsWith("-")) break;
    const subs = (await (typeof cmd.subCommands === "function" ? cmd.subCommands() : cmd.subCommands)) as Record<string, typeof main> | undefined;
    const next = subs?.[a];
    if (!next) break;
    parent = cmd;
    cmd = next;
    names.push(a);
  }
  return [cmd, parent, names];
}

/**
 * citty ignores options a command does not define; a typo such as `--statedir` would then silently
 * fall back to a default (and `identity init --force` could replace the wrong identity). Refuse them.
 */
async function unknownOption(argv: string[]): Promise<string | null> {
  const [cmd] = await resolveTarget(argv);
  const defs = ((await (typeof cmd.args === "function" ? cmd.args() : cmd.args)) ?? {}) as Record<string, { type?: string; alias?: string | string[] }>;
  const known = new Set<string>(["help", "h"]);
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === "positional") continue;
    known.add(name);
    for (const a of [def.alias ?? []].flat()) known.add(a);
    if (def.type === "boolean") known.add(`no-${name}`);
  }
  for (const tok of argv) {
    if (tok === "--") break;
    if (!tok.startsWith("-") || /^-\d/.test(tok)) continue;
    const name = tok.replace(/^-+/, "").split("=")[0]!;
    if (!known.has(name)) return tok;
  }
  return null;
}

const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

async function run(argv: string[]): Promise<number> {
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
    console.log(`vine ${VERSION}`);
    return 0;
  }
  if (argv.length === 0 || argv.includes("--help") || argv.includes("-h")) {
    const [cmd, parent, names] = await resolveTarget(argv);
    // citty names only the direct parent: spell the whole line ("vine identity init", not "identity init")
    const shown = parent && names.length > 1 ? { ...parent, meta: { ...(parent.meta as object), name: ["vine", ...names.slice(0, -1)].join(" ") } } : parent;
    const usage = await renderUsage(cmd, shown as typeof main | undefined);
    // citty colours unless NO_COLOR/TERM=dumb; piped help (| less, > file) gets plain text
    process.stdout.write(`${process.stdout.isTTY ? usage : plain(usage)}\n\n`);
    return 0;
  }
  const bad = await unknownOption(argv);
  if (bad) {
    // the command named on the line, never an option's value (`--foo bar`, `--foo=bar`) or a positional
    const [, , names] = await resolveTarget(argv.filter((a) => !a.startsWith("-")));
    process.stderr.write(`vine: unknown option ${bad.split("=")[0]}; see \`${["vine", ...names].join(" ")} --help\`\n`);
    return 2;
  }
  try {
    await runCommand(main, { rawArgs: argv });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    const err = e as Error;
    if (err instanceof CliFail) {
      process.stderr.write(`vine: ${err.message}\n`);
      return 1;
    }
    if (err?.name === "CLIError") {
      process.stderr.write(`vine: ${plain(err.message)}; see \`vine --help\`\n`);
      return 2;
    }
    process.stderr.write(`vine: ${err?.message ?? String(e)}\n`);
    if (process.env.VINE_DEBUG) process.stderr.write(`${err?.stack}\n`);
    return 1;
  }
}

const code = await run(process.argv.slice(2));
// `daemon run` keeps the process alive on its own and exits through its signal handlers.
if (!(process.argv[2] === "daemon" && process.argv[3] === "run")) process.exit(code);
