// Crash-loop stall: a data-plane worker busy with packets from its first moment never yielded to
// take the commands posted before it existed (the route table), so the TX thread dropped every
// outbound packet as unknown_route until traffic paused for a second. The host must wake it.

import { expect, test } from "bun:test";
import { DataPlane } from "../../src/dataplane/host.ts";
import { allocateTables, TableViews, type WorkerEvent } from "../../src/dataplane/tables.ts";
import { createEventFd, signalEventFd } from "../../src/linux/poll.ts";
import { closeFd } from "../../src/linux/tun.ts";
import { waitFor } from "../lib/wait.ts";

test("commands posted before the workers start reach a worker that is busy from its first moment", async () => {
  const busy = createEventFd();
  signalEventFd(busy); // never drained: always readable, as a TUN or socket under steady traffic is
  const got: string[] = [];
  const dp = new DataPlane(
    new TableViews(allocateTables()),
    (ev: WorkerEvent) => {
      if (ev.ev === "error") got.push(ev.message);
    },
    true,
    new URL("./fixtures/busy-worker.ts", import.meta.url).href,
  );
  try {
    dp.post({ op: "routes", routes: [{ addr: 0x0a2a0100, len: 24, peer: 0 }] }); // before start: queued
    await dp.start({ tunFd: busy, udpFd: busy, mtu: 1420 });
    await waitFor(() => got.includes("command routes"), { timeoutMs: 5000, what: "the TX worker to take the early routes command" });
    // And a command posted later, while the worker stays busy.
    dp.post({ op: "install", peer: 0, slot: 1, role: "initiator" });
    await waitFor(() => got.includes("command install"), { timeoutMs: 5000, what: "the RX worker to take a later command" });
  } finally {
    await dp.stop();
    closeFd(busy);
  }
}, 20_000);
