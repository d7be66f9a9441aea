// A tiny UDP tool for namespace tests, run as `bun test/lib/udp-probe.ts [options]` inside a namespace.
//   --bind PORT            local port (default: any)
//   --send IP:PORT:TEXT    send TEXT once at start (repeatable)
//   --echo                 answer every datagram with the same bytes
//   --listen               keep running and print each datagram received
// Prints one JSON line per event: {"event":"ready","port":N}, {"event":"recv","from":"ip:port","data":"…"}.

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    bind: { type: "string" },
    send: { type: "string", multiple: true },
    echo: { type: "boolean" },
    listen: { type: "boolean" },
  },
});

const print = (value: object) => process.stdout.write(`${JSON.stringify(value)}\n`);

const socket = await Bun.udpSocket({
  port: values.bind ? Number(values.bind) : 0,
  socket: {
    data(sock, data, port, address) {
      const text = Buffer.from(data).toString("utf8");
      print({ event: "recv", from: `${address}:${port}`, data: text });
      if (values.echo) sock.send(data, port, address);
    },
    // An ICMP error (port unreachable) for an earlier datagram is reported, not fatal.
    error(_sock, err) {
      print({ event: "error", error: String(err) });
    },
  },
});
print({ event: "ready", port: socket.port });

for (const spec of values.send ?? []) {
  const [ip, port, ...text] = spec.split(":");
  if (!socket.send(text.join(":"), Number(port), ip!)) print({ event: "send-failed", to: `${ip}:${port}` });
}

if (!values.listen && !values.echo) {
  socket.close(); // send() handed the datagrams to the kernel already
}
