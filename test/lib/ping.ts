// Parsing iputils `ping` output.

export interface PingResult {
  sent: number;
  received: number;
  lossPct: number;
  rtts: number[]; // milliseconds, one per reply
}

/** Parse iputils ping output; a run with no statistics line counts as nothing sent. */
export function parsePing(output: string): PingResult {
  const rtts: number[] = [];
  for (const match of output.matchAll(/icmp_seq=\d+ .*?time=([\d.]+) ms/g)) rtts.push(Number(match[1]));
  const stats = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(output);
  const sent = stats ? Number(stats[1]) : 0;
  const received = stats ? Number(stats[2]) : 0;
  const lossPct = sent === 0 ? 100 : Math.round(((sent - received) / sent) * 1000) / 10;
  return { sent, received, lossPct, rtts };
}
