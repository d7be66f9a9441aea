// What a process costs, read from /proc: resident memory, CPU time and open file descriptors. Used by
// the soak and scale tests (test/soak) on daemons started through TestNet.spawn (their PIDs are the
// daemons' own: `ip netns exec` execs the command).

import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** USER_HZ: the unit of utime/stime in /proc/PID/stat (100 on every Linux architecture vine runs on). */
export const CLK_TCK = 100;

/** Resident set size in kB (VmRSS of /proc/PID/status). */
export function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** utime + stime of a process (all its threads), in clock ticks (CLK_TCK per second). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may itself contain spaces.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

/** Number of open file descriptors (entries of /proc/PID/fd). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** The targets of a process's open descriptors, grouped ("socket", "anon_inode:[eventfd]", a path): for a leak report. */
export function fdKinds(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed while we looked
    }
    const kind = target.startsWith("socket:") ? "socket" : target.startsWith("pipe:") ? "pipe" : target;
    out[kind] = (out[kind] ?? 0) + 1;
  }
  return out;
}
