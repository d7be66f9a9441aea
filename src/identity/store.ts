// The identity row in the state database.

import { eq } from "drizzle-orm";
import type { StateStore } from "../state/db.ts";
import { identity as identityTable } from "../state/schema.ts";
import { identityFromSeed, type Identity } from "./keys.ts";

export function loadIdentity(store: StateStore): Identity | null {
  const row = store.db.select().from(identityTable).where(eq(identityTable.id, 1)).get();
  if (!row) return null;
  const id = identityFromSeed(new Uint8Array(row.secretSeed));
  if (id.peerId !== row.peerId) throw new Error(`the identity in ${store.path} is inconsistent (stored peer_id does not match its key)`);
  return id;
}

export function identityCreatedAt(store: StateStore): number | null {
  return store.db.select({ at: identityTable.createdAt }).from(identityTable).where(eq(identityTable.id, 1)).get()?.at ?? null;
}

export function saveIdentity(store: StateStore, id: Identity): void {
  const row = {
    id: 1,
    secretSeed: Buffer.from(id.seed),
    publicKey: Buffer.from(id.publicKey),
    peerId: id.peerId,
    fingerprint: id.fingerprint,
    createdAt: Date.now(),
  };
  store.db.insert(identityTable).values(row).onConflictDoUpdate({ target: identityTable.id, set: row }).run();
}
