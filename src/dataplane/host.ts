// Main-thread handle on the data-plane worker: starts it, posts commands (waking it through its
// eventfd, since it sleeps in poll()), and delivers its events.

import { createEventFd, signalEventFd } from "../linux/poll.ts";
import { closeFd } from "../linux/tun.ts";
import { WORKER_READY, type TableViews, type WorkerCommand, type WorkerEvent } from "./tables.ts";
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

export class DataPlane {
  private worker: Worker | null = null;
  private readonly wakeFd: number;
  /** Commands posted before the worker exists, delivered right after its init message. */
  private readonly early: WorkerCommand[] = [];

  constructor(
    private readonly views: TableViews,
    private readonly onEvent: (ev: WorkerEvent) => void,
  ) {
    this.wakeFd = createEventFd();
  }

  /** Start the worker and resolve once its loop runs (or reject with its first error). */
  start(init: Omit<WorkerInit, "tables" | "wakeFd">): Promise<void> {
    const url = workerUrl();
    const w = new Worker(url);
    this.worker = w;
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
        this.onEvent(ev);
      };
      w.onerror = (e) => {
        if (!ready) reject(new Error(`data-plane worker failed: ${e.message}`));
        else this.onEvent({ ev: "error", message: e.message });
      };
      w.postMessage({ init: { ...init, tables: this.views.shared, wakeFd: this.wakeFd } });
      for (const cmd of this.early.splice(0)) w.postMessage(cmd);
    });
  }

  get running(): boolean {
    return this.worker !== null && Atomics.load(this.views.misc, WORKER_READY) === 1;
  }

  post(cmd: WorkerCommand): void {
    if (!this.worker) {
      this.early.push(cmd);
      return;
    }
    this.worker.postMessage(cmd);
    signalEventFd(this.wakeFd);
  }

  /** Ask the worker to leave its loop, then terminate it. */
  async stop(timeoutMs = 1000): Promise<void> {
    const w = this.worker;
    if (!w) return;
    this.post({ op: "stop" });
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      w.addEventListener("message", (e: MessageEvent) => {
        if ((e.data as { ev: string }).ev === "stopped") {
          clearTimeout(t);
          resolve();
        }
      });
    });
    w.terminate();
    this.worker = null;
    closeFd(this.wakeFd);
  }
}
