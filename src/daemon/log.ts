// Daemon log: one line per event on stderr, as text or JSON (`--log-format json`).
// Secrets never reach this module: callers pass peer ids, names and addresses only.

import { monoNow } from "../clock.ts";

export type LogFormat = "text" | "json";

export class Log {
  private readonly lastRateLimited = new Map<string, number>();

  constructor(
    private readonly format: LogFormat = "text",
    private readonly write: (line: string) => void = (l) => process.stderr.write(l + "\n"),
  ) {}

  info(msg: string, fields: Record<string, unknown> = {}): void {
    this.emit("info", msg, fields);
  }

  warn(msg: string, fields: Record<string, unknown> = {}): void {
    this.emit("warn", msg, fields);
  }

  error(msg: string, fields: Record<string, unknown> = {}): void {
    this.emit("error", msg, fields);
  }

  /** At most one line per key every 10 s, so a flood of bad packets cannot flood the log. */
  rateLimited(key: string, msg: string, fields: Record<string, unknown> = {}): void {
    const now = monoNow();
    if (now - (this.lastRateLimited.get(key) ?? 0) < 10_000) return;
    this.lastRateLimited.set(key, now);
    this.emit("warn", msg, fields);
  }

  private emit(level: string, msg: string, fields: Record<string, unknown>): void {
    const ts = new Date().toISOString();
    if (this.format === "json") {
      this.write(JSON.stringify({ ts, level, msg, ...fields }));
      return;
    }
    const extra = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    this.write(`${ts} ${level.padEnd(5)} ${msg}${extra ? " " + extra : ""}`);
  }
}
