// Main-thread handle on the data-plane workers: one TX worker (TUN → UDP, under bulk traffic) and one
// RX worker (UDP → TUN, and TUN → UDP while traffic is light: see loop.ts), or a single worker for
// both with VINE_WORKERS=1. Starts them, routes each command to the thread (or threads) that own what
// it changes (waking it through its eventfd, since it sleeps in poll()), and delivers their events.

import { createEventFd, signalEventFd } from "../linux/poll.ts";
import { closeFd } from "../linux/tun.ts";
import { commandTarget, type TableViews, type WorkerCommand, type WorkerEvent } from "./tables.ts";
import type { WorkerInit } from "./worker.ts";
import { monoNow } from "../clock.ts";

/**
 * Where the worker's code is. In the compiled binary every entry point sits under /$bunfs/root/ at
 * its path relative to src/ (the Makefile compiles src/main.ts and src/dataplane/worker.ts together);
 * in development it is beside this file.
 */
function workerUrl(): string {
  if (Bun.main.startsWith("/$bunfs/")) return "/$bunfs/root/dataplane/worker.ts";
  return new URL("./worker.ts", import.meta.url).href;
}

interface Thread {
  role: WorkerInit["role"];
  worker: Worker | null;
  wakeFd: number;
  /** Commands posted before the worker exists, delivered right after its init message. */
  early: WorkerCommand[];
  /** Until when (ms) the wake-up is repeated after the last post. */
  resignalUntil: number;
}

/**
 * A worker takes commands only when it yields to its event loop, and it yields only when its wake-up
 * eventfd is readable (or poll times out, which steady traffic prevents). So every post must signal.
 * The signal is also repeated for this long after the last post (every RESIGNAL_EVERY_MS), a cheap
 * safety net: a command whose wake-up went missing (as when poll.ts's scratch buffer was collected
 * and signals added garbage or 0) is taken at the next one instead of waiting for a quiet second
 * that a busy link never has.
 */
const RESIGNAL_FOR_MS = 1000;
const RESIGNAL_EVERY_MS = 100;

export class DataPlane {
  private readonly threads: Thread[];
  private resignalTimer: ReturnType<typeof setInterval> | null = null;
  /** What the packet-path warm-up did (src/dataplane/warmup.ts), once the workers are ready. */
  warmup: { packets: number; ms: number } | null = null;

  constructor(
    private readonly views: TableViews,
    private readonly onEvent: (ev: WorkerEvent) => void,
    split = process.env.VINE_WORKERS !== "1",
    /** The worker's code (tests substitute their own). */
    private readonly url: string = workerUrl(),
  ) {
    const roles: WorkerInit["role"][] = split ? ["tx", "rx"] : ["both"];
    this.threads = roles.map((role) => ({ role, worker: null, wakeFd: createEventFd(), early: [], resignalUntil: 0 }));
  }

  /** Start the workers and resolve once every loop runs (or reject with the first error). */
  async start(init: Omit<WorkerInit, "tables" | "wakeFd" | "role">): Promise<void> {
    await Promise.all(this.threads.map((t) => this.startThread(t, init)));
  }

  private startThread(t: Thread, init: Omit<WorkerInit, "tables" | "wakeFd" | "role">): Promise<void> {
    const w = new Worker(this.url);
    t.worker = w;
    return new Promise((resolve, reject) => {
      let ready = false;
      w.onmessage = (e: MessageEvent) => {
        const ev = e.data as WorkerEvent;
        if (!ready && ev.ev === "ready") {
          ready = true;
          if (ev.warmup) this.warmup = ev.warmup;
          resolve();
          return;
        }
        if (!ready && ev.ev === "error") {
          reject(new Error(ev.message));
          return;
        }
        if (ev.ev !== "stopped") this.onEvent(ev);
      };
      w.onerror = (e) => {
        if (!ready) reject(new Error(`data-plane worker (${t.role}) failed: ${e.message}`));
        else this.onEvent({ ev: "error", message: `${t.role}: ${e.message}` });
      };
      const other = this.threads.find((x) => x !== t);
      const full: WorkerInit = { ...init, role: t.role, tables: this.views.shared, wakeFd: t.wakeFd, otherWakeFd: other?.wakeFd ?? -1 };
      w.postMessage({ init: full });
      // Commands posted before the worker existed (the route table, at start) need a wake-up like
      // any other: without one, the worker's loop — already busy with packets — might never yield.
      const early = t.early.splice(0);
      for (const cmd of early) w.postMessage(cmd);
      if (early.length > 0) this.wake(t);
    });
  }

  private wake(t: Thread): void {
    signalEventFd(t.wakeFd);
    t.resignalUntil = monoNow() + RESIGNAL_FOR_MS;
    if (this.resignalTimer) return;
    this.resignalTimer = setInterval(() => {
      const now = monoNow();
      let any = false;
      for (const x of this.threads) {
        if (!x.worker || x.resignalUntil <= now) continue;
        signalEventFd(x.wakeFd);
        any = true;
      }
      if (!any && this.resignalTimer) {
        clearInterval(this.resignalTimer);
        this.resignalTimer = null;
      }
    }, RESIGNAL_EVERY_MS);
  }

  post(cmd: WorkerCommand): void {
    const target = commandTarget(cmd);
    for (const t of this.threads) {
      if (t.role !== "both" && target !== "both" && t.role !== target) continue;
      if (!t.worker) {
        t.early.push(cmd);
        continue;
      }
      t.worker.postMessage(cmd);
      this.wake(t);
    }
  }

  /** Ask the workers to leave their loops, then terminate them. */
  async stop(timeoutMs = 1000): Promise<void> {
    if (this.resignalTimer) clearInterval(this.resignalTimer);
    this.resignalTimer = null;
    await Promise.all(
      this.threads.map(async (t) => {
        const w = t.worker;
        if (!w) return;
        const stopped = new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timeoutMs);
          w.addEventListener("message", (e: MessageEvent) => {
            if ((e.data as WorkerEvent).ev === "stopped") {
              clearTimeout(timer);
              resolve();
            }
          });
        });
        w.postMessage({ op: "stop" });
        signalEventFd(t.wakeFd);
        await stopped;
        w.terminate();
        t.worker = null;
        closeFd(t.wakeFd);
      }),
    );
  }
}

/** errno values of a TUN whose interface was deleted under the open file descriptor. */
const TUN_GONE_ERRNO: Record<number, string> = { 5: "EIO", 19: "ENODEV", 77: "EBADFD" };

export interface DataPlaneErrorVerdict {
  /** "tun-gone": the first report that the TUN interface is gone; "tun": a further TUN read error. */
  kind: "tun-gone" | "tun" | "other";
  /** A TUN read error (of any errno). */
  tun: boolean;
  errno: number | null;
  errnoName: string | null;
  /** Whether to log this one (rate-limited: at most once every `intervalMs` per kind). */
  log: boolean;
  /** Reports of this kind not logged since the last logged one. */
  suppressed: number;
}

/**
 * Sorts the workers' "error" events (the worker reports every failed read) so the daemon can log
 * them without flooding: a gone TUN is reported once, other errors at most once per interval.
 */
export class DataPlaneErrors {
  private tunGone = false;
  private readonly lastLogged = new Map<string, number>();
  private readonly suppressed = new Map<string, number>();

  constructor(private readonly intervalMs = 10_000) {}

  /** The verdict for the TUN-gone message once it was reported: the worker may repeat it thousands of times a second. */
  private repeat: { message: string; verdict: DataPlaneErrorVerdict } | null = null;

  note(message: string, now: number): DataPlaneErrorVerdict {
    if (this.repeat && this.repeat.message === message) return this.repeat.verdict;
    const m = /^tun read failed: errno (\d+)/.exec(message);
    const errno = m ? Number(m[1]) : null;
    const gone = errno !== null && errno in TUN_GONE_ERRNO;
    if (gone && !this.tunGone) {
      this.tunGone = true;
      return { kind: "tun-gone", tun: true, errno, errnoName: TUN_GONE_ERRNO[errno]!, log: true, suppressed: 0 };
    }
    const key = m ? (gone ? "tun-gone" : `tun:${errno}`) : message.replace(/\d+/g, "N");
    const kind = m ? "tun" : "other";
    // once the TUN is gone every read fails the same way: it was said once, never again
    if (this.lastLogged.size > 64 && !this.lastLogged.has(key)) {
      // many distinct messages: forget the old ones rather than grow
      this.lastLogged.clear();
      this.suppressed.clear();
    }
    const last = this.lastLogged.get(key);
    if (!gone && (last === undefined || now - last >= this.intervalMs)) {
      const suppressed = this.suppressed.get(key) ?? 0;
      this.lastLogged.set(key, now);
      this.suppressed.set(key, 0);
      return { kind, tun: m !== null, errno, errnoName: null, log: true, suppressed };
    }
    this.suppressed.set(key, (this.suppressed.get(key) ?? 0) + 1);
    const verdict: DataPlaneErrorVerdict = { kind, tun: m !== null, errno, errnoName: gone ? TUN_GONE_ERRNO[errno!]! : null, log: false, suppressed: 0 };
    if (gone) this.repeat = { message, verdict };
    return verdict;
  }
}
