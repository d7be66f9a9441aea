// Signed snapshots for audits: one JSON document (status, peers, routes, sessions, counters and
// recent events) signed with the node's Ed25519 identity. The signature covers the exact bytes of
// JSON.stringify(document); verification re-serialises the parsed document, which reproduces those
// bytes because JSON.parse keeps key order and the document holds only strings, numbers, booleans,
// nulls, arrays and objects.

import { writeFileSync } from "node:fs";
import { ed25519Sign, ed25519Verify } from "../crypto/ed25519.ts";
import { decodePeerId, type Identity } from "../identity/index.ts";
import type { DaemonViews } from "./views.ts";
import type { Daemon } from "./daemon.ts";

export const SNAPSHOT_KIND = "vine-snapshot";

export interface SnapshotFile {
  kind: typeof SNAPSHOT_KIND;
  signer: string; // peer_id of the signing node
  signature: string; // base64 Ed25519 signature over JSON.stringify(document)
  document: SnapshotDocument;
}

export interface SnapshotDocument extends DaemonViews {
  version: 1;
  created_at: string;
  events: { at: string; kind: string; peer_id: string | null; from_path: string | null; to_path: string | null; detail: unknown }[];
}

export function signSnapshot(identity: Identity, views: DaemonViews, events: SnapshotDocument["events"], now = Date.now()): SnapshotFile {
  const document: SnapshotDocument = { version: 1, created_at: new Date(now).toISOString(), ...views, events };
  const bytes = new TextEncoder().encode(JSON.stringify(document));
  const signature = Buffer.from(ed25519Sign(bytes, identity.seed)).toString("base64");
  return { kind: SNAPSHOT_KIND, signer: identity.peerId, signature, document };
}

export type VerifyResult = { ok: true; signer: string; node: string; created_at: string } | { ok: false; reason: string };

/** Check a snapshot's signature against the public key inside its signer's peer_id. */
export function verifySnapshot(text: string): VerifyResult {
  let file: SnapshotFile;
  try {
    file = JSON.parse(text) as SnapshotFile;
  } catch (e) {
    return { ok: false, reason: `not JSON: ${(e as Error).message}` };
  }
  if (!file || file.kind !== SNAPSHOT_KIND || typeof file.signer !== "string" || typeof file.signature !== "string" || typeof file.document !== "object") {
    return { ok: false, reason: "not a vine snapshot (kind, signer, signature and document are required)" };
  }
  const pub = decodePeerId(file.signer);
  if (!pub) return { ok: false, reason: `signer ${JSON.stringify(file.signer)} is not a valid peer_id` };
  let sig: Uint8Array;
  try {
    sig = new Uint8Array(Buffer.from(file.signature, "base64"));
  } catch {
    return { ok: false, reason: "signature is not base64" };
  }
  const bytes = new TextEncoder().encode(JSON.stringify(file.document));
  if (!ed25519Verify(sig, bytes, pub)) return { ok: false, reason: "signature does not match the document: the snapshot was altered or signed by someone else" };
  if (file.document.status?.peer_id !== file.signer) return { ok: false, reason: "the document's node is not the signer" };
  return { ok: true, signer: file.signer, node: String(file.document.status?.node ?? ""), created_at: String(file.document.created_at ?? "") };
}

/** Build, sign, store in the snapshots table, and optionally write to a file (0600). */
export function writeSnapshot(d: Daemon, outFile?: string): { id: number; file: string | null } {
  const views = d.viewsNow();
  const events = d.persistence.recentEvents(100);
  const snap = signSnapshot(d.identity, views, events);
  const id = d.persistence.saveSnapshot(snap);
  if (outFile) writeFileSync(outFile, JSON.stringify(snap, null, 2) + "\n", { mode: 0o600 });
  return { id, file: outFile ?? null };
}
