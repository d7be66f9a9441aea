// Migrations, embedded in the binary: each .sql file is imported as text at build time, so the
// compiled `vine` needs no files beside it. Add new files at the end; never edit an applied one.

import m0000 from "../../migrations/0000_initial.sql" with { type: "text" };
import m0001 from "../../migrations/0001_session_cipher.sql" with { type: "text" };
import m0002 from "../../migrations/0002_initiation_timestamps.sql" with { type: "text" };

export interface Migration {
  id: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  { id: "0000_initial", sql: m0000 },
  { id: "0001_session_cipher", sql: m0001 },
  { id: "0002_initiation_timestamps", sql: m0002 },
];
