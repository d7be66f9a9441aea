// The benchmark harness still runs end to end: a 3-second, vine-only, one-round peers.sh run (the
// first step of `make bench`), then bench/report.ts on its output. Asserts completion, never speed.

import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const VINE = join(ROOT, "dist/vine");
const PEERS_SH = resolve(ROOT, "../shared/bench/peers.sh");
const BUN = join(ROOT, "node_modules/.bin/bun");
const RUN_LIMIT_MS = 240_000;

/** Why the smoke run cannot happen here, or null. Checked once, before any test is defined. */
function skipReason(): string | null {
  if (!existsSync(VINE)) return `${VINE} is missing: run \`make build\``;
  if (!existsSync(PEERS_SH)) return `${PEERS_SH} is missing`;
  if (process.getuid?.() !== 0) return "needs root (network namespaces)";
  // peers.sh uses fixed namespace names and a lock: a bench running right now is not a failure of ours.
  const lock = Bun.spawnSync(["flock", "-n", "/tmp/bench-peers.lock", "true"]);
  if (lock.exitCode !== 0) return "another peers.sh run holds /tmp/bench-peers.lock";
  return null;
}

const reason = skipReason();
if (reason) console.warn(`bench-smoke skipped: ${reason}`);

describe.skipIf(reason !== null)("bench smoke: peers.sh vine, 1 round of 3 s", () => {
  // Made inside the test: a skipped describe still runs its body, and would leave the directory behind.
  let out = "";
  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  test(
    "peers.sh completes the vine round and report.ts renders the page",
    async () => {
      out = mkdtempSync(join(tmpdir(), "vine-bench-smoke-"));
      const proc = Bun.spawn(["bash", PEERS_SH, "vine"], {
        cwd: ROOT,
        env: { ...process.env, ROUNDS: "1", DURATION: "3", PING_COUNT: "20", OUT: out, VINE_BIN: VINE },
        stdout: "pipe",
        stderr: "pipe",
      });
      // On overrun, SIGTERM lets peers.sh run its own cleanup (namespaces, recorded PIDs).
      const timer = setTimeout(() => proc.kill("SIGTERM"), RUN_LIMIT_MS);
      const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
      clearTimeout(timer);
      const context = `peers.sh exit ${code}\n--- stdout\n${stdout}\n--- stderr (tail)\n${stderr.slice(-3000)}`;

      const runDir = realpathSync(join(out, "latest"));
      const summaryFile = join(runDir, "summary.md");
      expect(existsSync(summaryFile), context).toBe(true);
      const vineRow = readFileSync(summaryFile, "utf8").split("\n").find((l) => l.startsWith("| vine |"));
      expect(vineRow, context).toBeDefined();
      const cells = vineRow!.split("|").map((c) => c.trim());
      expect(cells[cells.length - 2], context).toBe("1/1"); // the "ok rounds" column
      expect(code, context).toBe(0);

      const page = join(out, "benchmarks.md");
      const report = Bun.spawnSync([BUN, "bench/report.ts", "--peers", runDir, "--out", page, "--vine", VINE], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
      expect(report.exitCode, report.stderr.toString()).toBe(0);
      const text = readFileSync(page, "utf8");
      expect(text).toContain("| vine |");
      expect(text).toContain("## Targets");
      // No Nebula in this run: its ratios must say "not measured", not invent a number.
      expect(text).toMatch(/TCP×1 ≥ 3× Nebula \| – \| not measured/);
    },
    RUN_LIMIT_MS + 30_000,
  );
});
