// Protocol constants and the test time scale.

import { expect, test } from "bun:test";
import * as C from "../../src/wg/constants.ts";

test("WireGuard's sizes and timer values", () => {
  expect([C.INITIATION_SIZE, C.RESPONSE_SIZE, C.COOKIE_REPLY_SIZE, C.TRANSPORT_HEADER_SIZE, C.TAG_SIZE]).toEqual([148, 92, 64, 16, 16]);
  expect([C.MSG_INITIATION, C.MSG_RESPONSE, C.MSG_COOKIE_REPLY, C.MSG_TRANSPORT]).toEqual([1, 2, 3, 4]);
  expect(C.REKEY_AFTER_TIME).toBe(120_000);
  expect(C.REJECT_AFTER_TIME).toBe(180_000);
  expect(C.REKEY_ATTEMPT_TIME).toBe(90_000);
  expect(C.REKEY_TIMEOUT).toBe(5_000);
  expect(C.KEEPALIVE_TIMEOUT).toBe(10_000);
  expect(C.COOKIE_SECRET_MAX_AGE).toBe(120_000);
  expect(C.REKEY_AFTER_MESSAGES).toBe(2 ** 60);
  expect(C.REJECT_AFTER_MESSAGES_U64).toBe(18446744073709543423n);
  // The JS ceiling is exact and not above WireGuard's own limit.
  expect(Number.isSafeInteger(C.REJECT_AFTER_MESSAGES - 1)).toBe(true);
  expect(BigInt(C.REJECT_AFTER_MESSAGES) < C.REJECT_AFTER_MESSAGES_U64).toBe(true);
});

test("scaled() applies VINE_TEST_TIME_SCALE once, within (0, 1]", async () => {
  expect(C.scaled(1000)).toBe(1000 * C.timeScale());
  const run = (scale: string) =>
    Bun.spawnSync([process.execPath, "-e", `import { scaled } from "${import.meta.dir}/../../src/wg/constants.ts"; console.log(scaled(120000))`], {
      env: { ...process.env, VINE_TEST_TIME_SCALE: scale },
    }).stdout.toString().trim();
  expect(run("0.05")).toBe("6000");
  expect(run("1")).toBe("120000");
  expect(run("7")).toBe("120000"); // never slower than real time
  expect(run("nonsense")).toBe("120000");
});
