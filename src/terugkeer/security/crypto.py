"""Encryption at rest of personal data with AES-256-GCM, and the keyed digests (HMAC-SHA256)
derived from the same keys.

What is encrypted: victims' contact details (``victims.contact``), second-factor secrets
(``users.totp_secret``), the raw message of every victim registration (``feed_events.body``,
see :func:`seal_body`), and of every quarantined message its raw line, and the value of a
refused personal field (``quarantine.raw``, ``quarantine.value``). A parked message waiting
for a person known by BSN names it by a keyed digest (:meth:`FieldCipher.blind`), not the
BSN. ``terugkeer keys rotate`` (``detention/contacts.py``) brings all of them to the newest key.

Keys come from ``TERUGKEER_ENCRYPTION_KEYS_FILE`` (a file) or else
``TERUGKEER_ENCRYPTION_KEYS``: ``id:base64key`` pairs separated by commas or lines (32-byte
keys, urlsafe or standard base64; ``#`` starts a comment in the file); the LAST one encrypts,
all of them decrypt, so a key can be rotated in (``terugkeer keys generate`` prints a new
one). :func:`field_cipher` re-reads the file when it changes (its modification time or size),
so a running server picks up a new key set without a restart. Outside development a missing
or placeholder key stops the application at start.

Stored form: ``enc:v1:<key id>:<base64(nonce ‖ ciphertext+tag)>``. The associated data binds
a value to its column and, where the row is known when it is written, to its row
(``victims.contact:<victim_ref>``, ``feed_events.body:<event_id>``), so a ciphertext copied
to another row does not decrypt. Quarantine rows are bound to their column only (their id is
not known before the insert).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass
from pathlib import Path

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
    """Keys written as ``id:base64key``, separated by commas or lines; ``#`` starts a comment."""
    lines = (line.partition("#")[0] for line in spec.splitlines())
    parts = [p.strip() for line in lines for p in line.split(",") if p.strip()]
    keys: list[tuple[str, bytes]] = []
    for i, part in enumerate(parts):
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

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is encrypted under the active key (nothing to rotate)."""
        return self.key_id_of(stored) == self.active_id

    def open(self, stored: str, context: str) -> str:
        """``stored`` decrypted, or as it is when it was never encrypted (written before its
        column was encrypted; ``keys rotate`` encrypts it)."""
        return self.decrypt(stored, context) if stored.startswith(PREFIX) else stored

    def derived_key(self, kid: str, label: str) -> bytes | None:
        """A key for one purpose (``label``) derived from the key ``kid`` (HMAC-SHA256), so
        that no key serves two purposes; None when ``kid`` is not configured."""
        key = dict(self.keys).get(kid)
        if key is None:
            return None
        return hmac.new(key, b"terugkeer derived key:" + label.encode("utf-8"), "sha256").digest()

    def mac(self, data: str, label: str, kid: str | None = None) -> str | None:
        """``<key id>:<hex HMAC-SHA256 of data>`` under the key derived for ``label`` from key
        ``kid`` (default: the active one); None when that key is not configured."""
        kid = kid or self.active_id
        key = self.derived_key(kid, label)
        if key is None:
            return None
        return f"{kid}:{hmac.new(key, data.encode('utf-8'), 'sha256').hexdigest()}"

    def check_mac(self, data: str, label: str, stored: str) -> bool | None:
        """Whether ``stored`` (from :meth:`mac`) is right for ``data``; None when its key is
        not configured (any more)."""
        kid = stored.partition(":")[0]
        expected = self.mac(data, label, kid)
        return None if expected is None else hmac.compare_digest(expected, stored)

    def blind(self, value: str, label: str, kid: str | None = None) -> str:
        """A keyed digest of ``value`` to look it up by without storing it: ``<key id>:<32
        hex>``. The same value gives the same digest under the same key."""
        digest = self.mac(value, label, kid)
        if digest is None:
            raise DecryptError(f"no configured key with id [{kid}]")
        kid_, _, hexed = digest.partition(":")
        return f"{kid_}:{hexed[:32]}"

    def blinds(self, value: str, label: str) -> list[str]:
        """:meth:`blind` under every configured key (to find values written under older keys)."""
        return [self.blind(value, label, kid) for kid, _ in self.keys]


def key_spec(settings: Settings) -> str:
    """The configured key list: the key file's content when one is set, else the variable."""
    if settings.encryption_keys_file:
        path = Path(settings.encryption_keys_file)
        try:
            return path.read_text(encoding="utf-8")
        except OSError as e:
            raise KeyConfigError(
                f"TERUGKEER_ENCRYPTION_KEYS_FILE [{path}] cannot be read: {e.strerror}"
            ) from e
    return settings.encryption_keys


def cipher_from_settings(settings: Settings) -> FieldCipher:
    spec = key_spec(settings)
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


_lock = threading.Lock()
_loaded: list[tuple[object, FieldCipher]] = []  # (where the keys came from, the cipher)


def _source(settings: Settings) -> object:
    """What identifies the configured key set: the key file's name, modification time and
    size, or the variable's value (a process sees a changed variable only after a restart)."""
    if settings.encryption_keys_file:
        try:
            st = os.stat(settings.encryption_keys_file)
        except OSError:
            return (settings.environment, settings.encryption_keys_file, None)
        return (settings.environment, settings.encryption_keys_file, st.st_mtime_ns, st.st_size)
    return (settings.environment, settings.encryption_keys)


def field_cipher() -> FieldCipher:
    """The cipher of the configured key set, read again whenever the key file changes."""
    settings = get_settings()
    source = _source(settings)
    with _lock:
        if _loaded and _loaded[0][0] == source:
            return _loaded[0][1]
        cipher = cipher_from_settings(settings)
        _loaded[:] = [(source, cipher)]
        return cipher


def reload_keys() -> None:
    """Forget the loaded key set: the next :func:`field_cipher` reads it again."""
    with _lock:
        _loaded.clear()


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


def totp_context(user_name: str) -> str:
    """The associated data of a user's encrypted second-factor secret."""
    return f"users.totp_secret:{user_name}"


# The raw messages kept encrypted in ``feed_events.body``: a victim registration is its
# victim's name, e-mail, phone and address. The whole body is encrypted (not only its
# ``contact``): opening gives back the message byte for byte, so its hash and the duplicate
# check stay as they are; and nothing reads these bodies in SQL (the reconciliation reads
# leave fields of leave events in SQL, the fold and the obligations read detention events),
# only the ingest, in Python, through :func:`open_body`. The kinds the SQL reads stay clear.
SEALED_KINDS = frozenset({"victim_registered"})
RAW_CONTEXT = "quarantine.raw"
VALUE_CONTEXT = "quarantine.value"
# refused fields whose value is personal data (a victim's contact, the person's identifiers)
PERSONAL_FIELDS = ("contact", "person")
WAITS_LABEL = "quarantine.waits_for"
BLIND_PERSON = "person:bsn#"  # a parked message waiting for a person known by BSN


def body_context(event_id: str) -> str:
    return f"feed_events.body:{event_id}"


def seal_body(kind: str, event_id: str, body: str, cipher: FieldCipher | None = None) -> str:
    """A raw message as ``feed_events.body`` keeps it: encrypted for the kinds that carry a
    victim's contact details (:data:`SEALED_KINDS`), else as received."""
    if kind not in SEALED_KINDS:
        return body
    return (cipher or field_cipher()).encrypt(body, body_context(event_id))


def open_body(stored: str, event_id: str, cipher: FieldCipher | None = None) -> str:
    """A stored ``feed_events.body`` as received (decrypted when it was encrypted)."""
    if not stored.startswith(PREFIX):
        return stored
    return (cipher or field_cipher()).decrypt(stored, body_context(event_id))


def seal_raw(raw: str, cipher: FieldCipher | None = None) -> str:
    """A quarantined message's raw line as ``quarantine.raw`` keeps it: always encrypted (a
    refused message may carry a BSN or a victim's contact details anywhere)."""
    return (cipher or field_cipher()).encrypt(raw, RAW_CONTEXT)


def open_raw(stored: str, cipher: FieldCipher | None = None) -> str:
    return (cipher or field_cipher()).open(stored, RAW_CONTEXT)


def is_personal_field(field: str | None) -> bool:
    return field is not None and field.split(".")[0].split("[")[0] in PERSONAL_FIELDS


def seal_value(
    field: str | None, value: str | None, cipher: FieldCipher | None = None
) -> str | None:
    """The refused value as ``quarantine.value`` keeps it: encrypted when the field is
    personal (a victim's contact, the person), else as it is."""
    if value is None or not is_personal_field(field):
        return value
    return (cipher or field_cipher()).encrypt(value, VALUE_CONTEXT)


def open_value(stored: str | None, cipher: FieldCipher | None = None) -> str | None:
    return None if stored is None else (cipher or field_cipher()).open(stored, VALUE_CONTEXT)


def seal_waits_for(waits_for: str | None, cipher: FieldCipher | None = None) -> str | None:
    """What a parked message waits for, as ``quarantine.waits_for`` keeps it: a person known
    by BSN (``person:bsn:NNN``) as a keyed digest under the active key, anything else (a
    period, an event, a prison number) as it is."""
    if waits_for is None or not waits_for.startswith("person:bsn:"):
        return waits_for
    return BLIND_PERSON + (cipher or field_cipher()).blind(waits_for, WAITS_LABEL)


def waits_for_forms(key: str, cipher: FieldCipher | None = None) -> list[str]:
    """Every stored form of ``key``: as it is, and for a person known by BSN its digest under
    every configured key (rows parked before a rotation)."""
    if not key.startswith("person:bsn:"):
        return [key]
    c = cipher or field_cipher()
    return [key, *(BLIND_PERSON + b for b in c.blinds(key, WAITS_LABEL))]
