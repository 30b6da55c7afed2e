"""Encryption at rest of sensitive fields (victims' contact details) with AES-256-GCM.

Keys come from ``TERUGKEER_ENCRYPTION_KEYS``: comma-separated ``id:base64key`` pairs (32-byte
keys, urlsafe or standard base64); the LAST one encrypts, all of them decrypt, so a key can be
rotated in (``terugkeer keys generate`` prints a new one; ``terugkeer keys rotate`` re-encrypts
everything to the newest). Outside development a missing or placeholder key stops the
application at start.

Stored form: ``enc:v1:<key id>:<base64(nonce ‖ ciphertext+tag)>``. The associated data binds
a value to its column and row (``victims.contact:<victim_ref>``), so a ciphertext copied to
another row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from terugkeer.config import Settings, get_settings

PREFIX = "enc:v1:"
PLACEHOLDERS = frozenset({"", "change-me", "changeme", "placeholder", "secret", "dev"})
# Development only: a fixed key derived from a public string, so a fresh clone runs without
# configuration. Never accepted outside development.
_DEV_KEY = hashlib.sha256(b"terugkeer development key - not for real data").digest()


class KeyConfigError(RuntimeError):
    """The encryption keys are missing, malformed or placeholders."""


class DecryptError(ValueError):
    """A stored value cannot be decrypted with any configured key."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def _decode(kid: str, text: str) -> bytes:
    if text.strip().lower() in PLACEHOLDERS:
        raise KeyConfigError(f"encryption key [{kid}] is a placeholder")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise KeyConfigError(f"encryption key [{kid}] is not base64") from e
    if len(raw) != 32:
        raise KeyConfigError(f"encryption key [{kid}] must be 32 bytes, got {len(raw)}")
    if raw == bytes(32):
        raise KeyConfigError(f"encryption key [{kid}] is all zeros")
    return raw


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    keys: list[tuple[str, bytes]] = []
    for i, part in enumerate(p.strip() for p in spec.split(",") if p.strip()):
        kid, sep, text = part.partition(":")
        if not sep or not kid:
            raise KeyConfigError(f"encryption key {i + 1} must be written as id:base64key")
        if any(k == kid for k, _ in keys):
            raise KeyConfigError(f"encryption key id [{kid}] appears twice")
        keys.append((kid, _decode(kid, text)))
    return keys


@dataclass(frozen=True)
class FieldCipher:
    keys: tuple[tuple[str, bytes], ...]  # the last one encrypts

    @property
    def active_id(self) -> str:
        return self.keys[-1][0]

    def encrypt(self, plaintext: str, context: str) -> str:
        kid, key = self.keys[-1]
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return f"{PREFIX}{kid}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, stored: str, context: str) -> str:
        if not stored.startswith(PREFIX):
            raise DecryptError("value is not encrypted")
        kid, _, body = stored[len(PREFIX) :].partition(":")
        key = dict(self.keys).get(kid)
        if key is None:
            raise DecryptError(f"no configured key with id [{kid}]")
        try:
            raw = base64.b64decode(body)
            plain = AESGCM(key).decrypt(raw[:12], raw[12:], context.encode("utf-8"))
        except (InvalidTag, binascii.Error, ValueError) as e:
            raise DecryptError(f"value does not decrypt under key [{kid}] for {context}") from e
        return plain.decode("utf-8")

    def key_id_of(self, stored: str) -> str | None:
        if not stored.startswith(PREFIX):
            return None
        return stored[len(PREFIX) :].partition(":")[0]


def cipher_from_settings(settings: Settings) -> FieldCipher:
    spec = settings.encryption_keys
    if not spec.strip():
        if settings.environment != "development":
            raise KeyConfigError(
                "TERUGKEER_ENCRYPTION_KEYS is not set; generate one with `terugkeer keys generate`"
            )
        return FieldCipher((("dev", _DEV_KEY),))
    keys = parse_keys(spec)
    if not keys:
        raise KeyConfigError("TERUGKEER_ENCRYPTION_KEYS holds no keys")
    return FieldCipher(tuple(keys))


@lru_cache(maxsize=1)
def field_cipher() -> FieldCipher:
    return cipher_from_settings(get_settings())


def check_production_settings(settings: Settings | None = None) -> None:
    """Refuse to start outside development with missing or placeholder keys."""
    settings = settings or get_settings()
    if settings.environment == "development":
        return
    cipher = cipher_from_settings(settings)
    if any(key == _DEV_KEY for _, key in cipher.keys):
        raise KeyConfigError("the development key may not be used outside development")


def contact_context(victim_ref: str) -> str:
    """The associated data of a victim's encrypted contact details."""
    return f"victims.contact:{victim_ref}"
