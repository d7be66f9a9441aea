// The daemon's pidfile (state_dir/vine.pid). A pidfile is only trusted when its process is alive
// AND is a vine daemon: after a crash the PID may belong to anything.

import { existsSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const PIDFILE = "vine.pid";
export const LOGFILE = "vine.log";

export function pidfilePath(stateDir: string): string {
  return join(stateDir, PIDFILE);
}

export function writePidfile(stateDir: string, pid = process.pid): void {
  writeFileSync(pidfilePath(stateDir), `${pid}\n`, { mode: 0o600 });
}

export function removePidfile(stateDir: string, pid = process.pid): void {
  const p = pidfilePath(stateDir);
  try {
    if (readFileSync(p, "utf8").trim() === String(pid)) unlinkSync(p);
  } catch {}
}

export type PidState = { state: "none" } | { state: "running"; pid: number } | { state: "stale"; pid: number; why: string };

/** Read the pidfile and decide whether it names a live vine daemon. */
export function checkPidfile(stateDir: string): PidState {
  const p = pidfilePath(stateDir);
  if (!existsSync(p)) return { state: "none" };
  const pid = Number.parseInt(readFileSync(p, "utf8").trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0) return { state: "stale", pid: 0, why: "the pidfile does not hold a PID" };
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return { state: "stale", pid, why: `process ${pid} is not running` };
  }
  if (!/\bdaemon\b/.test(cmdline) || !/\brun\b/.test(cmdline)) {
    return { state: "stale", pid, why: `process ${pid} is not a vine daemon (${cmdline.trim().slice(0, 80)})` };
  }
  return { state: "running", pid };
}
