// vine: one executable for the daemon and every operator command.
//   vine <group> <command> [flags]      vine --help      vine --version

import { defineCommand, runCommand, showUsage } from "citty";
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

async function resolveTarget(argv: string[]): Promise<[typeof main, typeof main | undefined]> {
  // The command whose usage to show: walk the subcommands named on the line.
  let cmd = main as typeof main;
  let parent: typeof main | undefined;
  for (const a of argv) {
    if (a.startsWith("-")) break;
    const subs = (await (typeof cmd.subCommands === "function" ? cmd.subCommands() : cmd.subCommands)) as Record<string, typeof main> | undefined;
    const next = subs?.[a];
    if (!next) break;
    parent = cmd;
    cmd = next;
  }
  return [cmd, parent];
}

async function run(argv: string[]): Promise<number> {
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
    console.log(`vine ${VERSION}`);
    return 0;
  }
  if (argv.length === 0 || argv.includes("--help") || argv.includes("-h")) {
    const [cmd, parent] = await resolveTarget(argv);
    await showUsage(cmd, parent);
    return 0;
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
      const [cmd, parent] = await resolveTarget(argv);
      await showUsage(cmd, parent);
      process.stderr.write(`vine: ${err.message}\n`);
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
