// A minimal WireGuard peer built only from vine's protocol engine (src/wg, src/crypto) and node:dgram,
// run by test/e2e/wg-protocol-interop.test.ts inside a namespace next to a stock wireguard-go.
//
// As initiator it handshakes with wireguard-go and sends one ICMP echo request (10.42.0.1 →
// 10.42.1.1) in a transport message; the kernel behind wireguard-go answers and we decrypt the reply.
// As responder it answers wireguard-go's own handshakes and echoes the pings that follow.
// Progress goes to stdout as one JSON object per line ({"event": ...}); keys are never printed.
//
// Config (env VINE_WGI_CONFIG, JSON): privateKey, peerPublic, psk (base64), peer "ip:port", listen "ip:port".

import { createSocket } from "node:dgram";
import { createAead } from "../../../src/crypto/aead.ts";
import { x25519PublicKey } from "../../../src/crypto/x25519.ts";
import { MSG_COOKIE_REPLY, MSG_INITIATION, MSG_RESPONSE, MSG_TRANSPORT, TAG_SIZE, TRANSPORT_HEADER_SIZE } from "../../../src/wg/constants.ts";
import { CookieChecker, CookieJar } from "../../../src/wg/cookie.ts";
import { Handshaker, type InitiatorPending, type SessionKeys } from "../../../src/wg/handshake.ts";
import { messageType, transportCounter, transportReceiver, writeTransportHeader } from "../../../src/wg/messages.ts";
import { ReplayWindow } from "../../../src/wg/replay.ts";
import { icmpEcho, parseIcmpEcho } from "./icmp.ts";

const cfg = JSON.parse(process.env.VINE_WGI_CONFIG ?? "{}") as { privateKey: string; peerPublic: string; psk: string; peer: string; listen: string };
const b64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));
const privateKey = b64(cfg.privateKey);
const peerPublic = b64(cfg.peerPublic);
const psk = b64(cfg.psk);
const [peerHost, peerPort] = [cfg.peer.split(":")[0]!, Number(cfg.peer.split(":")[1])];
const [listenHost, listenPort] = [cfg.listen.split(":")[0]!, Number(cfg.listen.split(":")[1])];

const local = { privateKey, publicKey: x25519PublicKey(privateKey) };
const hs = new Handshaker(local);
const cookies = new CookieChecker(local.publicKey);
const jar = new CookieJar(peerPublic);
const aead = createAead();

interface Session {
  keys: SessionKeys;
  sendCounter: number;
  replay: ReplayWindow;
  /** A responder may send only after the initiator's first transport message (key confirmation). */
  confirmed: boolean;
}
const sessions = new Map<number, Session>(); // by our local index
let current: Session | null = null;
let pending: InitiatorPending | null = null;
let nextIndex = 0x1000 + Math.floor(Math.random() * 0x10000);
const ECHO_ID = 0x7a11;
const ECHO_PAYLOAD = new TextEncoder().encode("vine protocol interop ping");

const emit = (event: string, extra: Record<string, unknown> = {}) => console.log(JSON.stringify({ event, ...extra }));

const sock = createSocket("udp4");
let dest = { host: peerHost, port: peerPort };
const send = (msg: Uint8Array) => sock.send(msg, dest.port, dest.host);

function sendTransport(s: Session, payload: Uint8Array): void {
  const padded = Math.ceil(payload.length / 16) * 16; // WireGuard pads to 16 bytes
  const out = new Uint8Array(TRANSPORT_HEADER_SIZE + padded + TAG_SIZE);
  const counter = s.sendCounter++;
  writeTransportHeader(out, 0, s.keys.remoteIndex, counter);
  out.set(payload, TRANSPORT_HEADER_SIZE);
  aead.seal(s.keys.sendKey, counter, out, TRANSPORT_HEADER_SIZE, padded);
  send(out);
}

function initiate(): void {
  const localIndex = nextIndex++;
  const r = hs.createInitiation(peerPublic, psk, localIndex, jar.cookie());
  pending = r.pending;
  send(r.message);
  emit("initiation-sent", { localIndex });
}

function onResponse(msg: Uint8Array): void {
  if (!pending || !hs.checkMac1(msg)) return emit("drop", { why: "response without pending or bad mac1" });
  const keys = hs.consumeResponse(pending, psk, msg);
  if (!keys) return emit("drop", { why: "response did not authenticate" });
  pending = null;
  const s: Session = { keys, sendCounter: 0, replay: new ReplayWindow(), confirmed: true };
  sessions.set(keys.localIndex, s);
  current = s;
  emit("handshake-complete", { role: "initiator", localIndex: keys.localIndex, remoteIndex: keys.remoteIndex });
  sendTransport(s, icmpEcho("request", "10.42.0.1", "10.42.1.1", ECHO_ID, 1, ECHO_PAYLOAD));
  emit("echo-request-sent", { seq: 1 });
}

function onInitiation(msg: Uint8Array): void {
  if (!cookies.checkMac1(msg)) return emit("drop", { why: "initiation with bad mac1" });
  const got = hs.consumeInitiation(msg);
  if (!got) return emit("drop", { why: "initiation did not authenticate" });
  if (Buffer.compare(got.peerPublic, peerPublic) !== 0) return emit("drop", { why: "initiation from an unknown key" });
  const localIndex = nextIndex++;
  const { message, keys } = hs.createResponse(got.state, psk, localIndex, jar.cookie());
  sessions.set(localIndex, { keys, sendCounter: 0, replay: new ReplayWindow(), confirmed: false });
  send(message);
  emit("handshake-complete", { role: "responder", localIndex, remoteIndex: keys.remoteIndex });
}

function onTransport(msg: Uint8Array): void {
  const receiver = transportReceiver(msg, 0, msg.length);
  const s = sessions.get(receiver);
  if (!s) return emit("drop", { why: "transport for an unknown index", receiver });
  const counter = transportCounter(msg, 0);
  if (!s.replay.check(counter)) return emit("drop", { why: "replay" });
  if (!aead.open(s.keys.recvKey, counter, msg, TRANSPORT_HEADER_SIZE, msg.length - TRANSPORT_HEADER_SIZE)) return emit("drop", { why: "transport did not authenticate" });
  if (!s.replay.accept(counter)) return emit("drop", { why: "replay" });
  if (!s.confirmed) {
    s.confirmed = true;
    current = s;
    emit("session-confirmed", { localIndex: receiver });
  }
  const plain = msg.subarray(TRANSPORT_HEADER_SIZE, msg.length - TAG_SIZE);
  if (plain.length === 0) return emit("keepalive", { counter });
  const echo = parseIcmpEcho(plain);
  if (!echo) return emit("drop", { why: "payload is not an ICMP echo", length: plain.length });
  if (echo.kind === "reply") {
    const ok = echo.src === "10.42.1.1" && echo.dst === "10.42.0.1" && echo.id === ECHO_ID && Buffer.compare(echo.payload, ECHO_PAYLOAD) === 0;
    emit(ok ? "echo-reply" : "echo-reply-mismatch", { src: echo.src, dst: echo.dst, id: echo.id, seq: echo.seq, counter });
    return;
  }
  // An echo request from the wireguard-go side: answer it through the session it came in on.
  emit("echo-request", { src: echo.src, dst: echo.dst, seq: echo.seq, localIndex: receiver });
  if (echo.dst === "10.42.0.1") sendTransport(s, icmpEcho("reply", echo.dst, echo.src, echo.id, echo.seq, echo.payload));
}

sock.on("message", (data, rinfo) => {
  const msg = new Uint8Array(data.buffer, data.byteOffset, data.length);
  dest = { host: rinfo.address, port: rinfo.port }; // follow the peer's endpoint, like WireGuard roaming
  switch (messageType(msg, msg.length)) {
    case MSG_INITIATION:
      return onInitiation(msg);
    case MSG_RESPONSE:
      return onResponse(msg);
    case MSG_COOKIE_REPLY:
      if (pending && jar.consumeReply(msg, pending.mac1)) emit("cookie");
      return;
    case MSG_TRANSPORT:
      return onTransport(msg);
    default:
      return emit("drop", { why: "not a WireGuard message", length: msg.length });
  }
});

sock.bind(listenPort, listenHost, () => {
  emit("listening", { port: listenPort });
  initiate();
  // Retransmit the initiation (REKEY_TIMEOUT, shortened) until the first handshake completes.
  const retry = setInterval(() => {
    if (current) clearInterval(retry);
    else initiate();
  }, 1000);
});

// Never outlive the test by much, even if it dies without killing us.
setTimeout(() => process.exit(3), 120_000).unref();
process.on("SIGTERM", () => process.exit(0));

