// UDP sockets on loopback for unit tests (no privileges, no namespace): each test file gets an
// opener whose sockets are closed after every test.

import { afterEach } from "bun:test";
import { closeFd } from "../../src/linux/tun.ts";
import { openUdp } from "../../src/linux/udp.ts";

export const LOOPBACK = 0x7f000001;

/** Call at the top level of a test file; the returned function opens a socket bound to 127.0.0.1:0. */
export function loopbackSockets(): () => number {
  const opened: number[] = [];
  afterEach(() => {
    for (const fd of opened.splice(0)) closeFd(fd);
  });
  return () => {
    const fd = openUdp({ port: 0, bindAddress: LOOPBACK });
    opened.push(fd);
    return fd;
  };
}
