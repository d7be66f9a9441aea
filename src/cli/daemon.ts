// `vine daemon run | start | stop | status | reload`.

import { defineCommand } from "citty";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { configStateDirProblem, runDaemon } from "../daemon/daemon.ts";
import { controlRequest } from "../daemon/control.ts";
import { checkPidfile, LOGFILE } from "../daemon/pidfile.ts";
import type { StatusView } from "../daemon/views.ts";
import { daemonError, fail, printJson, requireConfig, resolveStateDir, stateArgs, formatArg } from "./common.ts";

const configArg = { config: { type: "string", alias: "c", description: "config file", default: "/etc/libvine/vine.toml" } } as const;

/** argv that re-runs this same program (compiled binary, or bun + script in development). */
function selfArgv(args: string[]): string[] {
  const main = Bun.main;
  if (main.startsWith("/$bunfs/") || main.startsWith("B:/~BUN/")) return [process.execPath, ...args];
  return [process.execPath, main, ...args];
}

const run = defineCommand({
  meta: { name: "run", description: "Run the daemon in the foreground (logs to stderr; SIGTERM/SIGINT stop, SIGHUP reloads, SIGUSR1 snapshots)" },
  args: {
    ...configArg,
    "log-format": { type: "string", description: "text or json", default: "text" },
  },
  async run({ args }) {
    const fmt = args["log-format"];
    if (fmt !== "text" && fmt !== "json") fail(`--log-format must be text or json, not ${fmt}`);
    process.exitCode = await runDaemon({ configPath: String(args.config), logFormat: fmt as "text" | "json" });
    process.exit(process.exitCode);
  },
});

const start = defineCommand({
  meta: { name: "start", description: "Start the daemon in the background; returns once it is up, or prints why not" },
  args: {
    ...configArg,
    timeout: { type: "string", description: "seconds to wait for the daemon to come up", default: "20" },
  },
  async run({ args }) {
    const cfg = requireConfig(String(args.config));
    const stateDir = cfg.node.stateDir;
    const pid = checkPidfile(stateDir);
    if (pid.state === "running") fail(`a vine daemon is already running (pid ${pid.pid}); \`vine daemon stop -c ${args.config}\` first`);
    // before the log file is opened: a missing or read-only state_dir gets its key, path and fix
    const problem = configStateDirProblem(cfg);
    if (problem) fail(problem);
    const logPath = join(stateDir, LOGFILE);
    const logFd = openSync(logPath, "a", 0o600);
    const child = Bun.spawn(selfArgv(["daemon", "run", "-c", String(args.config)]), {
      stdin: "ignore",
      stdout: logFd,
      stderr: logFd,
      detached: true,
    } as Parameters<typeof Bun.spawn>[1]);
    closeSync(logFd);
    child.unref();
    const deadline = Date.now() + Number(args.timeout) * 1000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        const tail = readFileSync(logPath, "utf8").trimEnd().split("\n").slice(-8).join("\n");
        fail(`the daemon exited during start (code ${child.exitCode ?? child.signalCode}). Last log lines (${logPath}):\n${tail}`);
      }
      try {
        const s = (await controlRequest(stateDir, { cmd: "status" }, 1000)) as StatusView;
        if (s.daemon.phase === "running") {
          console.log(`vine daemon started: pid ${s.daemon.pid}, ${s.node} ${s.address}, log ${logPath}`);
          return;
        }
      } catch {}
      await Bun.sleep(100);
    }
    fail(`the daemon did not come up within ${args.timeout}s; see ${logPath}`);
  },
});

const stop = defineCommand({
  meta: { name: "stop", description: "Stop the daemon (SIGTERM) and wait until its TUN and routes are gone" },
  args: { ...stateArgs, timeout: { type: "string", description: "seconds to wait", default: "15" } },
  async run({ args }) {
    const stateDir = resolveStateDir(args);
    const pid = checkPidfile(stateDir);
    if (pid.state === "none") fail(`no vine daemon is running for ${stateDir} (no pidfile)`);
    if (pid.state === "stale") fail(`stale pidfile in ${stateDir}: ${pid.why}; no daemon to stop`);
    const p = (pid as { pid: number }).pid;
    process.kill(p, "SIGTERM");
    const deadline = Date.now() + Number(args.timeout) * 1000;
    while (Date.now() < deadline) {
      if (checkPidfile(stateDir).state !== "running") {
        console.log(`vine daemon (pid ${p}) stopped`);
        return;
      }
      await Bun.sleep(100);
    }
    fail(`the daemon (pid ${p}) did not stop within ${args.timeout}s`);
  },
});

const status = defineCommand({
  meta: { name: "status", description: "Is the daemon running? pid, phase and uptime" },
  args: { ...stateArgs, ...formatArg },
  async run({ args }) {
    const stateDir = resolveStateDir(args);
    const pid = checkPidfile(stateDir);
    let live: StatusView | null = null;
    try {
      live = (await controlRequest(stateDir, { cmd: "status" }, 2000)) as StatusView;
    } catch {}
    const out = {
      running: live !== null,
      pid: live?.daemon.pid ?? (pid.state === "running" ? pid.pid : null),
      phase: live?.daemon.phase ?? (pid.state === "running" ? "unresponsive" : "stopped"),
      uptime_s: live?.daemon.uptime_s ?? null,
      pidfile: pid.state,
      stale_reason: pid.state === "stale" ? pid.why : null,
      state_dir: stateDir,
    };
    if (args.format === "json") printJson(out);
    else {
      if (out.running) console.log(`running: pid ${out.pid}, phase ${out.phase}, up ${out.uptime_s}s`);
      else if (pid.state === "stale") console.log(`stopped (stale pidfile: ${pid.why})`);
      else if (out.phase === "unresponsive") console.log(`pid ${out.pid} is alive but does not answer on the control socket`);
      else console.log("stopped");
    }
    if (!out.running) process.exitCode = 3;
  },
});

const reload = defineCommand({
  meta: { name: "reload", description: "Re-read the config in the running daemon (same as SIGHUP)" },
  args: { ...stateArgs, ...formatArg },
  async run({ args }) {
    const stateDir = resolveStateDir(args);
    let r: { ok: boolean; problems?: string[]; added?: string[]; removed?: string[] };
    try {
      r = (await controlRequest(stateDir, { cmd: "reload" }, 5000)) as typeof r;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      fail(code ? daemonError(stateDir, e, "daemon reload") : `reload: ${(e as Error).message}`);
    }
    if (args.format === "json") printJson(r!);
    else if (r!.ok) console.log(`reloaded: added ${r!.added?.join(", ") || "none"}; removed ${r!.removed?.join(", ") || "none"}`);
    else process.stderr.write(`reload rejected, the running config is kept:\n${(r!.problems ?? []).join("\n")}\n`);
    if (!r!.ok) process.exitCode = 1;
  },
});

export const daemon = defineCommand({
  meta: { name: "daemon", description: "Run, start, stop and inspect the vine daemon" },
  subCommands: { run, start, stop, status, reload },
});
