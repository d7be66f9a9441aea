// Main-thread handle on the data-plane workers: one TX worker (TUN → UDP) and one RX worker
// (UDP → TUN), or a single worker for both with VINE_WORKERS=1. Starts them, routes each command to
// the thread that owns what it changes (waking it through its eventfd, since it sleeps in poll()),
// and delivers their events.

import { createEventFd, signalEventFd } from "../linux/poll.ts";
import { closeFd } from "../linux/tun.ts";
import { commandTarget, type TableViews, type WorkerCommand, type WorkerEvent } from "./tables.ts";
import type { WorkerInit } from "./worker.ts";

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
}

export class DataPlane {
  private readonly threads: Thread[];

  constructor(
    private readonly views: TableViews,
    private readonly onEvent: (ev: WorkerEvent) => void,
    split = process.env.VINE_WORKERS !== "1",
  ) {
    const roles: WorkerInit["role"][] = split ? ["tx", "rx"] : ["both"];
    this.threads = roles.map((role) => ({ role, worker: null, wakeFd: createEventFd(), early: [] }));
  }

  /** Start the workers and resolve once every loop runs (or reject with the first error). */
  async start(init: Omit<WorkerInit, "tables" | "wakeFd" | "role">): Promise<void> {
    await Promise.all(this.threads.map((t) => this.startThread(t, init)));
  }

  private startThread(t: Thread, init: Omit<WorkerInit, "tables" | "wakeFd" | "role">): Promise<void> {
    const w = new Worker(workerUrl());
    t.worker = w;
    return new Promise((resolve, reject) => {
      let ready = false;
      w.onmessage = (e: MessageEvent) => {
        const ev = e.data as WorkerEvent;
        if (!ready && ev.ev === "ready") {
          ready = true;
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
      const full: WorkerInit = { ...init, role: t.role, tables: this.views.shared, wakeFd: t.wakeFd };
      w.postMessage({ init: full });
      for (const cmd of t.early.splice(0)) w.postMessage(cmd);
    });
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
      signalEventFd(t.wakeFd);
    }
  }

  /** Ask the workers to leave their loops, then terminate them. */
  async stop(timeoutMs = 1000): Promise<void> {
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
