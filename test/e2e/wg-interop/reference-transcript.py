#!/usr/bin/env python3
"""Independent reference for vine's WireGuard known-answer vectors.

Written from the WireGuard whitepaper (§5.4) with only Python's hashlib/hmac and the `cryptography`
package (OpenSSL X25519 and ChaCha20-Poly1305), sharing no code with vine. It prints the values that
test/unit/wg-handshake.test.ts and test/unit/crypto-blake2s.test.ts pin, so the pins are cross-checked
rather than merely captured from vine's own output. Run: python3 reference-transcript.py
"""
import hashlib, hmac, struct
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

def HASH(*parts): return hashlib.blake2s(b"".join(parts), digest_size=32).digest()
def MAC(key, data): return hashlib.blake2s(data, digest_size=16, key=key).digest()
def HMAC(key, data): return hmac.new(key, data, hashlib.blake2s).digest()
def KDF(n, key, data):
    prk = HMAC(key, data); out = []; prev = b""
    for i in range(1, n + 1):
        prev = HMAC(prk, prev + bytes([i])); out.append(prev)
    return out
def pub(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
def DH(priv, pubk): return X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(pubk))
def AEAD(key, counter, pt, ad): return ChaCha20Poly1305(key).encrypt(b"\0" * 4 + struct.pack("<Q", counter), pt, ad)
def AEAD_GCM(key, counter, pt, ad): return AESGCM(key).encrypt(b"\0" * 4 + struct.pack("<Q", counter), pt, ad)
def TAI64N(ms):
    secs, rem = divmod(ms, 1000)
    return struct.pack(">QI", 0x400000000000000A + secs, (rem * 1_000_000) & ~0xFFFFFF)

# Fixed inputs (the same as in the unit test).
Si_priv = bytes(range(1, 33)); Sr_priv = bytes(range(33, 65))
Ei_priv = bytes(range(65, 97)); Er_priv = bytes(range(97, 129))
psk = bytes(range(129, 161)); now_ms = 1_700_000_000_123
I_i, I_r = 0x11223344, 0x55667788
Si_pub, Sr_pub, Ei_pub, Er_pub = pub(Si_priv), pub(Sr_priv), pub(Ei_priv), pub(Er_priv)

C = HASH(b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s")
H = HASH(C, b"WireGuard v1 zx2c4 Jason@zx2c4.com")
H = HASH(H, Sr_pub)
C, = KDF(1, C, Ei_pub); H = HASH(H, Ei_pub)
C, k = KDF(2, C, DH(Ei_priv, Sr_pub))
enc_static = AEAD(k, 0, Si_pub, H); H = HASH(H, enc_static)
C, k = KDF(2, C, DH(Si_priv, Sr_pub))
enc_ts = AEAD(k, 0, TAI64N(now_ms), H); H = HASH(H, enc_ts)
msg1 = struct.pack("<B3xI", 1, I_i) + Ei_pub + enc_static + enc_ts
msg1 += MAC(HASH(b"mac1----", Sr_pub), msg1) + b"\0" * 16

C, = KDF(1, C, Er_pub); H = HASH(H, Er_pub)
C, = KDF(1, C, DH(Er_priv, Ei_pub))
C, = KDF(1, C, DH(Er_priv, Si_pub))
C, tau, k = KDF(3, C, psk); H = HASH(H, tau)
enc_empty = AEAD(k, 0, b"", H)
msg2 = struct.pack("<B3xII", 2, I_r, I_i) + Er_pub + enc_empty
msg2 += MAC(HASH(b"mac1----", Si_pub), msg2) + b"\0" * 16
T1, T2 = KDF(2, C, b"")

# First transport message initiator -> responder: counter 0, payload "ping".
data = struct.pack("<B3xIQ", 4, I_r, 0) + AEAD(T1, 0, b"ping", b"")

for name, v in [("Si_pub", Si_pub), ("Sr_pub", Sr_pub), ("Ei_pub", Ei_pub), ("Er_pub", Er_pub),
                ("tai64n", TAI64N(now_ms)), ("msg1", msg1), ("msg2", msg2),
                ("initiator_send", T1), ("initiator_recv", T2), ("transport", data)]:
    print(f"{name} = {v.hex()}")

# Primitive vectors.
print("hash_abc =", HASH(b"abc").hex())
print("mac_key0_32_abc =", MAC(bytes(range(32)), b"abc").hex())
print("hmac_key_abc =", HMAC(b"key", b"The quick brown fox jumps over the lazy dog").hex())
print("kdf3 =", [x.hex() for x in KDF(3, bytes(range(32)), b"input")])
print("kdf1_empty =", KDF(1, bytes(32), b"")[0].hex())
print("aead_wg =", AEAD(bytes(range(32)), 0x0102030405, b"hello wireguard", b"").hex())

# vine <-> vine with the AES-256-GCM offer (src/wg/handshake.ts): byte 1 of message 1 = offer mask 1,
# Hi' = HASH(Hi || "vine transport suites v1" || offer); byte 1 of message 2 = choice 1, mixed into H
# before Er; transport keys = KDF2(C, choice); transport AEAD = AES-256-GCM with WireGuard's nonce.
offer, choice = 1, 1
C = HASH(b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s")
H = HASH(C, b"WireGuard v1 zx2c4 Jason@zx2c4.com")
H = HASH(H, b"vine transport suites v1", bytes([offer]))
H = HASH(H, Sr_pub)
C, = KDF(1, C, Ei_pub); H = HASH(H, Ei_pub)
C, k = KDF(2, C, DH(Ei_priv, Sr_pub))
enc_static = AEAD(k, 0, Si_pub, H); H = HASH(H, enc_static)
C, k = KDF(2, C, DH(Si_priv, Sr_pub))
enc_ts = AEAD(k, 0, TAI64N(now_ms), H); H = HASH(H, enc_ts)
msg1 = struct.pack("<BB2xI", 1, offer, I_i) + Ei_pub + enc_static + enc_ts
msg1 += MAC(HASH(b"mac1----", Sr_pub), msg1) + b"\0" * 16
H = HASH(H, bytes([choice]))
C, = KDF(1, C, Er_pub); H = HASH(H, Er_pub)
C, = KDF(1, C, DH(Er_priv, Ei_pub))
C, = KDF(1, C, DH(Er_priv, Si_pub))
C, tau, k = KDF(3, C, psk); H = HASH(H, tau)
enc_empty = AEAD(k, 0, b"", H)
msg2 = struct.pack("<BB2xII", 2, choice, I_r, I_i) + Er_pub + enc_empty
msg2 += MAC(HASH(b"mac1----", Si_pub), msg2) + b"\0" * 16
T1, T2 = KDF(2, C, bytes([choice]))
data = struct.pack("<B3xIQ", 4, I_r, 0) + AEAD_GCM(T1, 0, b"ping", b"")
for name, v in [("aes_msg1", msg1), ("aes_msg2", msg2), ("aes_initiator_send", T1), ("aes_initiator_recv", T2), ("aes_transport", data)]:
    print(f"{name} = {v.hex()}")
