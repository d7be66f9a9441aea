// Giving the memory of idle buffers back to the kernel.
//
// The data plane's big buffers (UDP batches and GSO groups, GRO flows, the TUN read area: ~3 MB per
// daemon) are only touched page by page as traffic needs them, but once a burst has touched them they
// stay resident. madvise(MADV_DONTNEED) on the whole pages inside a buffer drops them: they read as
// zeros afterwards and cost nothing until written again. Only pages entirely inside the buffer are
// released, so memory that belongs to anything else is never touched.

import { libc, MADV_DONTNEED } from "../../ffi/libc.ts";

export const PAGE_SIZE = libc.getpagesize();

/** Release the whole pages inside [address, address + length); returns the bytes released (0 if none or refused). */
export function releasePages(address: number, length: number): number {
  const start = Math.ceil(address / PAGE_SIZE) * PAGE_SIZE;
  const end = Math.floor((address + length) / PAGE_SIZE) * PAGE_SIZE;
  if (end <= start) return 0;
  return libc.madvise(start, end - start, MADV_DONTNEED) === 0 ? end - start : 0;
}
