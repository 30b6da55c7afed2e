"""Accounts, API tokens, sign-in with throttling and a second factor, sessions."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from terugkeer.domain.refdata import refdata
from terugkeer.security import audit
from terugkeer.security.actor import Actor
from terugkeer.security.crypto import field_cipher, totp_context
from terugkeer.security.passwords import (
    hash_password,
    new_totp_secret,
    totp_uri,
    verify_password,
    verify_totp,
)
from terugkeer.security.roles import SCOPED_ROLES, SECOND_FACTOR_ROLES, Principal, Role
from terugkeer.security.tables import api_tokens, login_throttle, sessions, users

SESSION_HOURS = 8
THROTTLE_FAILURES = 5
THROTTLE_WINDOW = timedelta(minutes=15)
THROTTLE_LOCK = timedelta(minutes=15)
# who changes accounts when no one is named: terugkeer itself (the demo, the tests)
_SYSTEM = Actor("system", "system", "account administration")


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message says why."""


class SignInError(PermissionError):
    """Sign-in refused. ``reason`` is one of: credentials, second_factor, throttled."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _totp_context(name: str) -> str:
    return totp_context(name)  # `keys rotate` (detention/contacts.py) uses the same


@dataclass(frozen=True)
class NewUser:
    name: str
    role: Role
    totp_uri: str | None  # to enrol the second factor; shown once


def add_user(
    engine: Engine,
    name: str,
    role: str,
    password: str,
    municipality: str | None = None,
    *,
    actor: Actor | None = None,
) -> NewUser:
    """Add a user, with a ``create`` row of record type ``user`` by ``actor`` (default:
    terugkeer itself, recorded as ``system``) in the same transaction."""
    try:
        role_ = Role(role)
    except ValueError as e:
        raise AccountError(f"unknown role [{role}]; roles: {[r.value for r in Role]}") from e
    if role_ in SCOPED_ROLES:
        if not municipality:
            raise AccountError(f"role [{role}] needs --municipality GMnnnn")
        resolved = refdata().resolve_municipality(municipality)
        if resolved is None:
            raise AccountError(f"unknown municipality code [{municipality}]")
        municipality = resolved
    elif municipality:
        raise AccountError(f"role [{role}] has no municipality scope")
    if not name or len(name) > 100:
        raise AccountError("a user name has 1 to 100 characters")
    secret = new_totp_secret() if role_ in SECOND_FACTOR_ROLES else None
    with engine.begin() as conn:
        if conn.execute(select(users.c.id).where(users.c.name == name)).first():
            raise AccountError(f"user [{name}] exists already")
        conn.execute(
            insert(users).values(
                name=name,
                role=role_.value,
                municipality=municipality,
                password_hash=hash_password(password),
                totp_secret=field_cipher().encrypt(secret, _totp_context(name)) if secret else None,
                active=True,
                created_at=datetime.now(UTC),
            )
        )
        (actor or _SYSTEM).record(conn, "create", "user", [name], {"role": role_.value})
    return NewUser(name, role_, totp_uri(secret, name) if secret else None)


def totp_secret(engine: Engine, name: str) -> str | None:
    """The user's second-factor secret (for enrolment and for tests)."""
    with engine.connect() as conn:
        stored = conn.execute(select(users.c.totp_secret).where(users.c.name == name)).scalar_one()
    return None if stored is None else field_cipher().decrypt(stored, _totp_context(name))


def _principal(row: Any) -> Principal:
    return Principal(row.name, Role(row.role), row.municipality)


def create_token(
    engine: Engine, token_name: str, user_name: str, *, actor: Actor | None = None
) -> str:
    """A new API token for the user; only its hash is kept, the token is returned once. A
    ``create`` row of record type ``api_token`` by ``actor`` (default: ``system``)."""
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        user = conn.execute(select(users).where(users.c.name == user_name)).first()
        if user is None:
            raise AccountError(f"no user [{user_name}]")
        if conn.execute(select(api_tokens.c.id).where(api_tokens.c.name == token_name)).first():
            raise AccountError(f"token [{token_name}] exists already")
        conn.execute(
            insert(api_tokens).values(
                name=token_name,
                user_id=user.id,
                token_hash=_sha(token),
                created_at=datetime.now(UTC),
            )
        )
        (actor or _SYSTEM).record(conn, "create", "api_token", [token_name], {"user": user_name})
    return token


def principal_for_token(conn: Connection, token: str) -> Principal | None:
    row = conn.execute(
        select(users, api_tokens.c.id.label("token_id"))
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(
            api_tokens.c.token_hash == _sha(token),
            api_tokens.c.revoked_at.is_(None),
            users.c.active,
        )
    ).first()
    if row is None:
        return None
    conn.execute(
        update(api_tokens)
        .where(api_tokens.c.id == row.token_id)
        .values(last_used_at=datetime.now(UTC))
    )
    return _principal(row)


def _throttled(conn: Connection, keys: list[str], now: datetime) -> bool:
    for row in conn.execute(select(login_throttle).where(login_throttle.c.key.in_(keys))):
        if row.locked_until is not None and row.locked_until > now:
            return True
    return False


def _fail(conn: Connection, keys: list[str], now: datetime) -> None:
    for key in keys:
        row = conn.execute(select(login_throttle).where(login_throttle.c.key == key)).first()
        if row is None or now - row.window_start > THROTTLE_WINDOW:
            if row is None:
                conn.execute(insert(login_throttle).values(key=key, failures=1, window_start=now))
            else:
                conn.execute(
                    update(login_throttle)
                    .where(login_throttle.c.id == row.id)
                    .values(failures=1, window_start=now, locked_until=None)
                )
            continue
        failures = row.failures + 1
        conn.execute(
            update(login_throttle)
            .where(login_throttle.c.id == row.id)
            .values(
                failures=failures,
                locked_until=now + THROTTLE_LOCK if failures >= THROTTLE_FAILURES else None,
            )
        )


@dataclass(frozen=True)
class Session:
    token: str  # for the cookie; only its hash is stored
    csrf_token: str
    principal: Principal
    expires_at: datetime


def sign_in(
    engine: Engine,
    name: str,
    password: str,
    address: str,
    totp_code: str | None = None,
    *,
    now: datetime | None = None,
) -> Session:
    """A new session, or SignInError. Throttled per account and per address."""
    now = now or datetime.now(UTC)
    keys = [f"user:{name}", f"addr:{address}"]
    with engine.begin() as conn:
        if _throttled(conn, keys, now):
            raise SignInError("throttled", "too many failed attempts; try again later")
        user = conn.execute(select(users).where(users.c.name == name, users.c.active)).first()
        if user is None or not verify_password(user.password_hash, password):
            _fail(conn, keys, now)
            audit.record(
                conn, name[:100] or "?", "sign_in_failed", "user", name[:100], "sign-in", {}
            )
            failed = SignInError("credentials", "unknown user or wrong password")
        elif user.totp_secret is not None and (
            totp_code is None
            or not verify_totp(
                field_cipher().decrypt(user.totp_secret, _totp_context(name)), totp_code
            )
        ):
            _fail(conn, keys, now)
            failed = SignInError("second_factor", "a valid one-time code is required for this role")
        else:
            failed = None
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
            expires = now + timedelta(hours=SESSION_HOURS)
            conn.execute(
                insert(sessions).values(
                    token_hash=_sha(token),
                    user_id=user.id,
                    csrf_token=csrf,
                    second_factor=user.totp_secret is not None,
                    created_at=now,
                    expires_at=expires,
                )
            )
            conn.execute(
                update(login_throttle)
                .where(login_throttle.c.key.in_(keys))
                .values(failures=0, locked_until=None)
            )
            audit.record(conn, _principal(user), "sign_in", "user", name, "sign-in", {})
    if failed is not None:
        raise failed
    return Session(token, csrf, _principal(user), expires)


def principal_for_session(
    conn: Connection, token: str, now: datetime | None = None
) -> tuple[Principal, str] | None:
    """(principal, csrf token) of a live session."""
    now = now or datetime.now(UTC)
    row = conn.execute(
        select(users, sessions.c.csrf_token, sessions.c.expires_at)
        .join(sessions, sessions.c.user_id == users.c.id)
        .where(
            sessions.c.token_hash == _sha(token), sessions.c.revoked_at.is_(None), users.c.active
        )
    ).first()
    if row is None or row.expires_at <= now:
        return None
    return _principal(row), row.csrf_token


def sign_out(engine: Engine, token: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(sessions)
            .where(sessions.c.token_hash == _sha(token))
            .values(revoked_at=datetime.now(UTC))
        )
