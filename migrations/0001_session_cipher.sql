-- The transport suite of each session (chacha20-poly1305 or aes-256-gcm); NULL without a session.
ALTER TABLE sessions ADD COLUMN cipher TEXT;
