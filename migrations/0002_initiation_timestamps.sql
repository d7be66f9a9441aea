-- The TAI64N timestamp of the last handshake initiation sent to each peer, by its X25519 public key
-- (base64). The next initiation carries max(now, this + one step), so a wall clock set back — even
-- across a restart — never makes peers refuse our initiations as replays.
CREATE TABLE initiation_timestamps (
  peer_key TEXT PRIMARY KEY,
  tai64n BLOB NOT NULL,
  updated_at INTEGER NOT NULL
);
