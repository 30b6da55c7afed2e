"""Tables of accounts, tokens, sessions, sign-in throttling and the audit log."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
)

from terugkeer.db.metadata import metadata
from terugkeer.db.types import UTCDateTime

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(24), nullable=False),
    Column("municipality", String(6)),  # scope of mayor's office and caseworker
    Column("password_hash", String(255), nullable=False),
    Column("totp_secret", Text),  # encrypted (security/crypto.py)
    Column("totp_last_step", Integer),  # step of the last one-time code accepted: used once
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the token
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Column("expires_at", UTCDateTime, nullable=False),
    # an administrator granted this token victims' contact details (audited)
    Column("contact_details", Boolean, nullable=False, server_default=false()),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("second_factor", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

login_throttle = Table(
    "login_throttle",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(150), nullable=False, unique=True),  # "user:NAME" or "addr:IP"
    Column("failures", Integer, nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime),
)

# Append-only, hash-chained: each row's hash covers its content and the previous row's hash.
# 64-bit ids on PostgreSQL (0018): a row per notice shown, 25 a page, runs through 2^31 in
# months when municipal systems poll their inbox; SQLite's rowid is 64-bit already
AUDIT_ID = Integer().with_variant(BigInteger(), "postgresql")

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", AUDIT_ID, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("role", String(24), nullable=False),
    Column("action", String(24), nullable=False),  # read, create, update, delete, sign_in, ...
    Column("record_type", String(40), nullable=False),
    Column("record_id", String(100), nullable=False),
    Column("purpose", String(200), nullable=False),
    Column("details", Text, nullable=False),  # JSON, never personal data
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    # <key id>:HMAC-SHA256 of hash under a key not in the database; NULL before 0008
    Column("mac", String(100)),
    Index("ix_audit_log_record", "record_type", "record_id"),
    # the auditor's search by actor, newest first (0017)
    Index("ix_audit_log_actor", "actor", "id"),
    # and by period: a block range index on PostgreSQL, small and cheap to keep for a column
    # that grows with the table (0017)
    Index("ix_audit_log_at", "at", postgresql_using="brin"),
)
