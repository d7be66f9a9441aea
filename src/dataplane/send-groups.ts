// Outgoing datagrams gathered into GSO send groups: consecutive datagrams to the same endpoint with
// the same size are copied back to back into one buffer and leave as one UDP_SEGMENT send (the
// kernel cuts them apart again); all groups of a burst leave with one sendmmsg. One traversal of the
// UDP stack per group instead of per datagram — and the receiver's UDP_GRO gets runs to merge.
//
// Both data-plane threads use one: the TX thread for the packets it encrypts, the RX thread for the
// packets it forwards as a relay.

import { UdpIo } from "../linux/udp.ts";

const GROUP_BYTES = 65536; // one GSO send: at most 64 segments and 64 KiB
const GROUP_SEGMENTS = 64;
/** Datagrams up to this size are segmentable: one datagram per 1500-byte underlay packet (IPv4 + UDP headers). */
const GSO_MAX_SEGMENT = 1500 - 28;

export type Memcpy = (dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, n: number) => void;

export class SendGroups {
  /** Whether UDP_SEGMENT is used (it is switched off for good when the kernel refuses it). */
  gso: boolean;
  private readonly io: UdpIo;
  private readonly slots: Uint8Array[];
  private readonly counts: Int32Array; // datagrams in each queued group
  private readonly groups: number;
  private group = 0; // current group slot
  private len = 0; // bytes in the current group
  private count = 0; // datagrams in the current group
  private seg = 0; // segment size of the current group
  private ip = 0;
  private port = 0;
  private lost = 0;

  /**
   * groups: send buffers of 64 KiB (a burst that fills them all flushes early).
   * onGsoRefused: called once if the kernel refuses segmented sends (the groups then carry one datagram each).
   */
  constructor(
    fd: number,
    groups: number,
    private readonly memcpy: Memcpy,
    private readonly onGsoRefused: (errno: number) => void,
    gso = true,
  ) {
    this.groups = groups;
    this.gso = gso;
    this.io = new UdpIo(fd, { batch: groups, bufSize: GROUP_BYTES, recv: false });
    this.slots = Array.from({ length: groups }, (_, i) => this.io.sendSlot(i));
    this.counts = new Int32Array(groups);
  }

  /** Copy the datagram buf[off, off+len) into the current group (it leaves at the next flush). */
  add(buf: Uint8Array, off: number, len: number, ip: number, port: number): void {
    // Only datagrams that fit one underlay packet are segmented (the kernel refuses GSO segments
    // larger than the path MTU); a larger one goes alone and may be fragmented.
    const segmentable = this.gso && len <= GSO_MAX_SEGMENT;
    if (this.count > 0 && (!segmentable || ip !== this.ip || port !== this.port || len > this.seg || this.len + len > GROUP_BYTES || this.count >= GROUP_SEGMENTS)) {
      this.close();
    }
    if (this.count === 0) {
      this.ip = ip;
      this.port = port;
      this.seg = len;
    }
    this.memcpy(this.slots[this.group]!, this.len, buf, off, len);
    this.len += len;
    this.count++;
    if (len < this.seg || !segmentable) this.close(); // a shorter datagram can only be a group's last
  }

  /**
   * Send every group queued so far. Datagrams that do not leave (the socket buffer is full, or the
   * kernel refuses a send) are counted for takeLost(): UDP is lossy and the packet path never waits.
   */
  flush(): void {
    this.queue();
    const io = this.io;
    const queued = io.pending;
    if (queued > 0) {
      const errorsBefore = io.sendErrors;
      // sendmmsg sends a prefix of the queue; what follows it was dropped (or, rarely, one refused
      // message was skipped: counted here as if the tail had failed, which is close enough).
      const sent = io.flush();
      for (let i = sent; i < queued; i++) this.lost += this.counts[i]!;
      // A kernel without UDP GSO refuses segmented sends: fall back to one datagram per send.
      const e = io.lastSendErrno;
      if (this.gso && io.sendErrors > errorsBefore && (e === 5 || e === 22 || e === 95)) {
        this.gso = false;
        this.onGsoRefused(e);
      }
    }
    this.group = 0;
  }

  /** Give the groups' memory back to the kernel while idle (only when nothing is queued); bytes released. */
  releaseData(): number {
    if (this.count > 0 || this.group > 0) return 0;
    return this.io.releaseData();
  }

  /** Datagrams lost since the last call. */
  takeLost(): number {
    const n = this.lost;
    this.lost = 0;
    return n;
  }

  /** Queue the current group (if any) as one send and start the next one. */
  private queue(): void {
    if (this.count === 0) return;
    this.io.queueSegmented(this.group, this.len, this.ip, this.port, this.count > 1 ? this.seg : 0);
    this.counts[this.group] = this.count;
    this.group++;
    this.count = 0;
    this.len = 0;
  }

  private close(): void {
    this.queue();
    if (this.group === this.groups) this.flush();
  }
}
