// The control socket: a Unix socket (mode 0600, in the state directory) through which the CLI
// asks the running daemon questions. One JSON request line in, one JSON response line out.

import { chmodSync, existsSync, unlinkSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import type { Daemon } from "./daemon.ts";

export const CONTROL_SOCKET = "control.sock";

export interface ControlRequest {
  cmd: "views" | "status" | "peers" | "routes" | "sessions" | "counters" | "reload" | "snapshot" | "ping" | "stop";
  args?: Record<string, unknown>;
}

export type ControlResponse = { ok: true; result: unknown } | { ok: false; error: string };

export function controlSocketPath(stateDir: string): string {
  return join(stateDir, CONTROL_SOCKET);
}

export class ControlServer {
  private server: ReturnType<typeof Bun.listen> | null = null;
  readonly path: string;

  constructor(
    private readonly d: Daemon,
    stateDir: string,
  ) {
    this.path = controlSocketPath(stateDir);
  }

  async listen(): Promise<void> {
    // A socket file left by a crashed run: if nobody answers on it, it is stale.
    if (existsSync(this.path)) {
      if (await controlAlive(this.path)) throw new Error(`another vine daemon answers on ${this.path}: stop it first`);
      unlinkSync(this.path);
    }
    const d = this.d;
    const old = process.umask(0o177);
    try {
      this.server = Bun.listen<{ buf: string }>({
        unix: this.path,
        socket: {
          open(s) {
            s.data = { buf: "" };
          },
          async data(s, chunk) {
            s.data.buf += chunk.toString();
            const nl = s.data.buf.indexOf("\n");
            if (nl < 0) {
              if (s.data.buf.length > 65536) s.end();
              return;
            }
            const line = s.data.buf.slice(0, nl);
            let resp: ControlResponse;
            try {
              resp = { ok: true, result: await handle(d, JSON.parse(line) as ControlRequest) };
            } catch (e) {
              resp = { ok: false, error: String((e as Error)?.message ?? e) };
            }
            s.write(JSON.stringify(resp) + "\n");
            s.end();
          },
        },
      });
    } finally {
      process.umask(old);
    }
    chmodSync(this.path, 0o600);
  }

  async close(): Promise<void> {
    this.server?.stop(true);
    this.server = null;
    try {
      unlinkSync(this.path);
    } catch {}
  }
}

async function handle(d: Daemon, req: ControlRequest): Promise<unknown> {
  switch (req.cmd) {
    case "views":
      return d.viewsNow();
    case "status":
      return d.viewsNow().status;
    case "peers":
      return { peers: d.viewsNow().peers };
    case "routes":
      return { routes: d.viewsNow().routes };
    case "sessions":
      return { sessions: d.viewsNow().sessions };
    case "counters":
      return d.viewsNow().counters;
    case "reload":
      return d.reload();
    case "snapshot":
      return d.snapshot(typeof req.args?.out === "string" ? req.args.out : undefined);
    case "ping":
      return d.mesh.ping(String(req.args?.ip ?? ""), Number(req.args?.count ?? 1), Number(req.args?.intervalMs ?? 1000), Number(req.args?.timeoutMs ?? 2000));
    case "stop":
      setTimeout(() => void d.stop("stop requested over the control socket").then(() => process.exit(0)), 10);
      return { stopping: true };
    default:
      throw new Error(`unknown control command ${JSON.stringify((req as { cmd: unknown }).cmd)}`);
  }
}

/** Send one request to the daemon; rejects when no daemon answers. */
export function controlRequest(stateDir: string, req: ControlRequest, timeoutMs = 5000): Promise<unknown> {
  return controlRequestAt(controlSocketPath(stateDir), req, timeoutMs);
}

export function controlRequestAt(path: string, req: ControlRequest, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`the daemon did not answer on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on("connect", () => sock.write(JSON.stringify(req) + "\n"));
    sock.on("data", (c) => (buf += c.toString()));
    sock.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      const line = buf.split("\n")[0];
      if (!line) return reject(new Error(`no answer on ${path}`));
      try {
        const r = JSON.parse(line) as ControlResponse;
        if (r.ok) resolve(r.result);
        else reject(new Error(r.error));
      } catch (e) {
        reject(e);
      }
    });
  });
}

async function controlAlive(path: string): Promise<boolean> {
  try {
    await controlRequestAt(path, { cmd: "status" }, 1000);
    return true;
  } catch {
    return false;
  }
}
