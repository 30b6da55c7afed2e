"""Accounts, API tokens, sign-in with throttling and a second factor, sessions, and their
lifecycle (revoke a token, disable a user, reset the second factor, end sessions).

Sign-in answers in the same time for a known and an unknown name (a password is always
verified, against a stand-in hash when there is no such user) and with one message for a wrong
name, password or one-time code. Throttling slows an attacker without letting anyone lock an
account: failures of one account (from any address) delay every further attempt on it,
doubling up to ``TERUGKEER_SIGNIN_MAX_DELAY`` seconds, but never refuse it; an address is
locked for 15 minutes after ``TERUGKEER_ADDRESS_FAILURES`` failures in 15 minutes. A one-time
code is accepted once (``users.totp_last_step``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import anyio
import pyotp
from anyio import to_thread
from sqlalchemy import Connection, Engine, insert, or_, select, update

from terugkeer.config import get_settings
from terugkeer.db.paging import Page, fetch_page
from terugkeer.domain.refdata import refdata
from terugkeer.security import audit
from terugkeer.security.actor import Actor
from terugkeer.security.crypto import field_cipher, totp_context
from terugkeer.security.passwords import (
    hash_password,
    new_totp_secret,
    totp_uri,
    verify_password,
)
from terugkeer.security.roles import (
    ROLE_PERMISSIONS,
    SCOPED_ROLES,
    SECOND_FACTOR_PERMISSIONS,
    SECOND_FACTOR_ROLES,
    Principal,
    Role,
)
from terugkeer.security.tables import api_tokens, login_throttle, sessions, users

SESSION_HOURS = 8
THROTTLE_WINDOW = timedelta(minutes=15)  # failures older than this are forgotten
THROTTLE_LOCK = timedelta(minutes=15)  # an address's lock (accounts are never locked)
TOTP_STEP = 30  # seconds
# the one answer to a refused sign-in, whatever was wrong: it confirms nothing
SIGN_IN_REFUSED = "sign-in refused: unknown user, wrong password or wrong one-time code"
THROTTLED = "too many failed sign-ins from this address; try again later"
# who changes accounts when no one is named: terugkeer itself (the demo, the tests)
_SYSTEM = Actor("system", "system", "account administration")


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message says why."""


class AccountNotFound(AccountError):
    """No such user or token."""


class SignInError(PermissionError):
    """Sign-in refused. ``reason`` is one of: credentials, second_factor, throttled."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _totp_context(name: str) -> str:
    return totp_context(name)  # `keys rotate` (detention/contacts.py) uses the same


@lru_cache(maxsize=1)
def _stand_in_hash() -> str:
    """What an unknown name's password is verified against: the same work as for a user."""
    return hash_password(secrets.token_urlsafe(24))


@dataclass(frozen=True)
class NewUser:
    name: str
    role: Role
    totp_uri: str | None  # to enrol the second factor; shown once


DOTS = (".", "..")
NAME_RULE = "1 to 100 printable characters, no slash (/), and not . or .."


def valid_name(name: str) -> bool:
    """A user's or an API token's name: 1 to 100 printable characters, no slash, not ``.`` or
    ``..``. The name is part of web addresses (``/portaal/accounts/NAME``,
    ``/api/v1/tokens/NAME``): with a slash or as a dot segment it would lead elsewhere, and
    the account or token could not be managed there."""
    return 0 < len(name) <= 100 and name.isprintable() and "/" not in name and name not in DOTS


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
    if not valid_name(name):
        raise AccountError(f"a user name has {NAME_RULE}")
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


def _may_read_contacts(role: Role) -> bool:
    return bool(SECOND_FACTOR_PERMISSIONS & ROLE_PERMISSIONS[role])


def create_token(
    engine: Engine,
    token_name: str,
    user_name: str,
    *,
    actor: Actor | None = None,
    contact_details: bool = False,
    now: datetime | None = None,
) -> str:
    """A new API token for the user; only its hash is kept, the token is returned once. It
    expires ``TERUGKEER_TOKEN_DAYS`` days from now. ``contact_details`` grants it the reading
    of victims' contact details (only for a role that may read them). A ``create`` row of
    record type ``api_token`` by ``actor`` (default: ``system``), naming the grant."""
    if not valid_name(token_name):
        raise AccountError(f"a token name has {NAME_RULE}")
    token = secrets.token_urlsafe(32)
    now = now or datetime.now(UTC)
    expires = now + timedelta(days=get_settings().token_days)
    with engine.begin() as conn:
        user = conn.execute(select(users).where(users.c.name == user_name)).first()
        if user is None:
            raise AccountError(f"no user [{user_name}]")
        if contact_details and not _may_read_contacts(Role(user.role)):
            raise AccountError(f"role [{user.role}] never reads victims' contact details")
        if conn.execute(select(api_tokens.c.id).where(api_tokens.c.name == token_name)).first():
            raise AccountError(f"token [{token_name}] exists already")
        conn.execute(
            insert(api_tokens).values(
                name=token_name,
                user_id=user.id,
                token_hash=_sha(token),
                created_at=now,
                expires_at=expires,
                contact_details=contact_details,
            )
        )
        details = {"user": user_name, "expires": expires.date().isoformat()}
        if contact_details:
            details["contact_details"] = "granted"
        (actor or _SYSTEM).record(conn, "create", "api_token", [token_name], details)
    return token


LAST_USED_PRECISION = timedelta(minutes=1)  # a token's last use is kept to the minute


def principal_for_token(
    conn: Connection, token: str, now: datetime | None = None
) -> Principal | None:
    """The user of a live token (not revoked, not expired, its user active)."""
    now = now or datetime.now(UTC)
    row = conn.execute(
        select(
            users,
            api_tokens.c.id.label("token_id"),
            api_tokens.c.expires_at,
            api_tokens.c.contact_details,
            api_tokens.c.last_used_at,
        )
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(
            api_tokens.c.token_hash == _sha(token),
            api_tokens.c.revoked_at.is_(None),
            users.c.active,
        )
    ).first()
    if row is None or row.expires_at <= now:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_PRECISION:
        # not a write per request: a feed posting batches back to back would queue on it
        conn.execute(
            update(api_tokens).where(api_tokens.c.id == row.token_id).values(last_used_at=now)
        )
    return Principal(row.name, Role(row.role), row.municipality, bool(row.contact_details))


def _failures(conn: Connection, key: str, now: datetime) -> tuple[int, datetime | None]:
    """Failures of ``key`` in the current window, and its lock."""
    row = conn.execute(select(login_throttle).where(login_throttle.c.key == key)).first()
    if row is None or now - row.window_start > THROTTLE_WINDOW:
        return 0, row.locked_until if row is not None else None
    return row.failures, row.locked_until


def account_delay(failures: int) -> float:
    """Seconds every attempt on an account waits after ``failures`` recent failures: none up
    to ``TERUGKEER_SIGNIN_FREE_FAILURES``, then doubling from half a second up to
    ``TERUGKEER_SIGNIN_MAX_DELAY``. It slows whoever guesses; it never refuses the owner."""
    settings = get_settings()
    over = failures - settings.signin_free_failures
    if over < 0:
        return 0.0
    return float(min(settings.signin_max_delay, 0.5 * 2 ** min(over, 16)))


def _fail(conn: Connection, keys: list[str], now: datetime) -> None:
    """Count a failure against the account and the address; lock the address (only) after
    ``TERUGKEER_ADDRESS_FAILURES`` failures in the window."""
    limit = get_settings().address_failures
    for key in keys:
        row = conn.execute(select(login_throttle).where(login_throttle.c.key == key)).first()
        if row is None:
            conn.execute(insert(login_throttle).values(key=key, failures=1, window_start=now))
            continue
        fresh = now - row.window_start > THROTTLE_WINDOW
        failures = 1 if fresh else row.failures + 1
        lock = key.startswith("addr:") and failures >= limit
        conn.execute(
            update(login_throttle)
            .where(login_throttle.c.id == row.id)
            .values(
                failures=failures,
                window_start=now if fresh else row.window_start,
                locked_until=now + THROTTLE_LOCK if lock else row.locked_until,
            )
        )


def totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The 30-second step whose code ``code`` is (this one, or the one before or after for
    clock drift), or None."""
    totp, step, given = pyotp.TOTP(secret), int(now.timestamp()) // TOTP_STEP, code.strip()
    found = None
    for candidate in (step - 1, step, step + 1):  # all three compared: the same time for each
        if hmac.compare_digest(totp.at(candidate * TOTP_STEP), given):
            found = candidate
    return found


@dataclass(frozen=True)
class Session:
    token: str  # for the cookie; only its hash is stored
    csrf_token: str
    principal: Principal
    expires_at: datetime


def _printable(name: str) -> str:
    """The name as it can be recorded: printable, at most 100 characters, else ``?``."""
    return name[:100] if name and name.isprintable() else "?"


def sign_in(
    engine: Engine,
    name: str,
    password: str,
    address: str,
    totp_code: str | None = None,
    *,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Session:
    """A new session, or SignInError (``throttled`` for a locked address, else
    ``credentials`` with one message for every cause). Every failure is counted against the
    account and the address and is a ``sign_in_failed`` row of the audit log (details: which
    factor failed, for the auditor only)."""
    now = now or datetime.now(UTC)
    delay = sign_in_delay(engine, name, address, now)
    if delay:
        sleep(delay)
    return _check_and_open(engine, name, password, address, totp_code, now)


async def sign_in_awaiting(
    engine: Engine, name: str, password: str, address: str, totp_code: str | None = None
) -> Session:
    """``sign_in`` for an async server: the account's delay is awaited instead of slept in a
    worker thread, so a burst of guesses at one account cannot hold every thread of the
    server's pool (and with them every other request)."""
    now = datetime.now(UTC)
    delay = await to_thread.run_sync(sign_in_delay, engine, name, address, now)
    if delay:
        await anyio.sleep(delay)
    return await to_thread.run_sync(
        _check_and_open, engine, name, password, address, totp_code, datetime.now(UTC)
    )


def _keys(name: str, address: str) -> list[str]:
    """The throttle's keys of an attempt: the account's and the address's."""
    return [f"user:{_printable(name)}"[:150], f"addr:{address}"[:150]]


def sign_in_delay(engine: Engine, name: str, address: str, now: datetime) -> float:
    """Seconds an attempt on ``name`` waits before it is checked, or SignInError
    (``throttled``) when the address is locked."""
    keys = _keys(name, address)
    with engine.begin() as conn:
        _, address_lock = _failures(conn, keys[1], now)
        account_failures, _ = _failures(conn, keys[0], now)
    if address_lock is not None and address_lock > now:
        raise SignInError("throttled", THROTTLED)
    return account_delay(account_failures)


def _check_and_open(
    engine: Engine,
    name: str,
    password: str,
    address: str,
    totp_code: str | None,
    now: datetime,
) -> Session:
    """Check the name, password and one-time code; a session, or SignInError."""
    recorded = _printable(name)
    keys = _keys(name, address)
    with engine.begin() as conn:
        user = (
            conn.execute(select(users).where(users.c.name == name, users.c.active)).first()
            if recorded != "?"
            else None
        )
        # the same work for an unknown name as for a known one
        password_ok = verify_password(
            user.password_hash if user is not None else _stand_in_hash(), password
        )
        step = None
        if user is not None and user.totp_secret is not None and totp_code:
            secret = field_cipher().decrypt(user.totp_secret, _totp_context(name))
            step = totp_step(secret, totp_code, now)
        factor = None
        if user is None or not password_ok:
            factor = "password"
        elif user.totp_secret is not None and (
            step is None
            or not conn.execute(  # single use: only a step later than the last accepted one
                update(users)
                .where(
                    users.c.id == user.id,
                    or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step),
                )
                .values(totp_last_step=step)
            ).rowcount
        ):
            factor = "second_factor"
        if factor is not None or user is None:
            _fail(conn, keys, now)
            audit.record(
                conn,
                recorded,
                "sign_in_failed",
                "user",
                recorded,
                "sign-in",
                {"factor": factor or "password"},
            )
            failed: SignInError | None = SignInError("credentials", SIGN_IN_REFUSED)
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
            conn.execute(  # the account's count starts again; an address's lock stays
                update(login_throttle).where(login_throttle.c.key == keys[0]).values(failures=0)
            )
            audit.record(conn, _principal(user), "sign_in", "user", name, "sign-in", {})
    if failed is not None or user is None:
        raise failed or SignInError("credentials", SIGN_IN_REFUSED)
    principal = Principal(
        user.name, Role(user.role), user.municipality, user.totp_secret is not None
    )
    return Session(token, csrf, principal, expires)


def principal_for_session(
    conn: Connection, token: str, now: datetime | None = None
) -> tuple[Principal, str] | None:
    """(principal, csrf token) of a live session."""
    now = now or datetime.now(UTC)
    row = conn.execute(
        select(users, sessions.c.csrf_token, sessions.c.expires_at, sessions.c.second_factor)
        .join(sessions, sessions.c.user_id == users.c.id)
        .where(
            sessions.c.token_hash == _sha(token), sessions.c.revoked_at.is_(None), users.c.active
        )
    ).first()
    if row is None or row.expires_at <= now:
        return None
    principal = Principal(row.name, Role(row.role), row.municipality, bool(row.second_factor))
    return principal, row.csrf_token


def sign_out(engine: Engine, token: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(sessions)
            .where(sessions.c.token_hash == _sha(token))
            .values(revoked_at=datetime.now(UTC))
        )


# --- lifecycle: what an administrator does (command line and API), each audited -------------


def _user(conn: Connection, name: str) -> Any:
    user = conn.execute(select(users).where(users.c.name == name)).first()
    if user is None:
        raise AccountNotFound(f"no user [{name}]")
    return user


def _end_sessions(conn: Connection, user_id: int, now: datetime) -> int:
    ended: int = conn.execute(
        update(sessions)
        .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount
    return ended


def revoke_token(engine: Engine, token_name: str, *, actor: Actor) -> None:
    """Revoke an API token (it stops working at once); a ``revoke`` row of ``api_token``."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = conn.execute(select(api_tokens).where(api_tokens.c.name == token_name)).first()
        if row is None:
            raise AccountNotFound(f"no token [{token_name}]")
        if row.revoked_at is not None:
            raise AccountError(f"token [{token_name}] was revoked already")
        conn.execute(update(api_tokens).where(api_tokens.c.id == row.id).values(revoked_at=now))
        actor.record(conn, "revoke", "api_token", [token_name])


def grant_contact_details(
    engine: Engine, token_name: str, granted: bool = True, *, actor: Actor
) -> None:
    """Grant (or withdraw) an API token the reading of victims' contact details, which a
    token otherwise never has (they need the second factor). Only for a role that may read
    them. A ``grant_contacts`` (or ``withdraw_contacts``) row of ``api_token``."""
    with engine.begin() as conn:
        row = conn.execute(
            select(api_tokens.c.id, users.c.role)
            .join(users, users.c.id == api_tokens.c.user_id)
            .where(api_tokens.c.name == token_name, api_tokens.c.revoked_at.is_(None))
        ).first()
        if row is None:
            raise AccountNotFound(f"no live token [{token_name}]")
        if granted and not _may_read_contacts(Role(row.role)):
            raise AccountError(f"role [{row.role}] never reads victims' contact details")
        conn.execute(
            update(api_tokens).where(api_tokens.c.id == row.id).values(contact_details=granted)
        )
        action = "grant_contacts" if granted else "withdraw_contacts"
        actor.record(conn, action, "api_token", [token_name], {"role": row.role})


def disable_user(engine: Engine, name: str, *, actor: Actor) -> int:
    """Disable a user: no sign-in, its sessions end and its tokens stop working. Returns the
    number of sessions ended. A ``disable`` row of ``user``."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        user = _user(conn, name)
        if not user.active:
            raise AccountError(f"user [{name}] is disabled already")
        conn.execute(update(users).where(users.c.id == user.id).values(active=False))
        ended = _end_sessions(conn, user.id, now)
        actor.record(conn, "disable", "user", [name], {"sessions_ended": ended})
    return ended


def reset_second_factor(engine: Engine, name: str, *, actor: Actor) -> NewUser:
    """A new second-factor secret for a user of a role that needs one (a lost or exposed
    authenticator); the old codes stop working and the user's sessions end. Returns the
    enrolment URI (shown once). A ``reset_2fa`` row of ``user``."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        user = _user(conn, name)
        role = Role(user.role)
        if role not in SECOND_FACTOR_ROLES:
            raise AccountError(f"role [{role}] has no second factor")
        secret = new_totp_secret()
        conn.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(
                totp_secret=field_cipher().encrypt(secret, _totp_context(name)),
                totp_last_step=None,
            )
        )
        ended = _end_sessions(conn, user.id, now)
        actor.record(conn, "reset_2fa", "user", [name], {"sessions_ended": ended})
    return NewUser(name, role, totp_uri(secret, name))


def end_sessions(engine: Engine, name: str, *, actor: Actor) -> int:
    """End every live session of a user (they sign in again). Returns how many ended. An
    ``end_sessions`` row of ``user``."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        user = _user(conn, name)
        ended = _end_sessions(conn, user.id, now)
        actor.record(conn, "end_sessions", "user", [name], {"sessions_ended": ended})
    return ended


@dataclass(frozen=True)
class TokenInfo:
    """An API token as an administrator sees it (never the token itself)."""

    name: str
    user: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    contact_details: bool


def list_tokens(engine: Engine) -> list[TokenInfo]:
    """Every API token, oldest first (accounts, no personal data of anyone else)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(api_tokens, users.c.name.label("user_name"))
            .join(users, users.c.id == api_tokens.c.user_id)
            .order_by(api_tokens.c.id)
        ).all()
    return [_token_info(r) for r in rows]


@dataclass(frozen=True)
class UserInfo:
    """An account as an administrator sees it (never its password hash or second factor)."""

    name: str
    role: str
    municipality: str | None
    active: bool
    second_factor: bool
    created_at: datetime


def list_users(
    engine: Engine,
    *,
    name: str | None = None,
    role: str | None = None,
    municipality: str | None = None,
    limit: int | None = 100,
    offset: int = 0,
) -> Page[UserInfo]:
    """A page of the accounts by name, of one name, role or municipality if asked."""
    stmt = select(users).order_by(users.c.name)
    if name is not None:
        stmt = stmt.where(users.c.name == name)
    if role:
        stmt = stmt.where(users.c.role == role)
    if municipality:
        stmt = stmt.where(users.c.municipality == municipality)
    with engine.connect() as conn:
        rows, total = fetch_page(conn, stmt, limit, offset)
    found = [
        UserInfo(
            r.name, r.role, r.municipality, bool(r.active), r.totp_secret is not None, r.created_at
        )
        for r in rows
    ]
    return Page(found, total, limit, offset)


def token_page(
    engine: Engine, *, user: str | None = None, limit: int | None = 100, offset: int = 0
) -> Page[TokenInfo]:
    """A page of the API tokens, newest first, of one user if asked (never a token)."""
    stmt = (
        select(api_tokens, users.c.name.label("user_name"))
        .join(users, users.c.id == api_tokens.c.user_id)
        .order_by(api_tokens.c.id.desc())
    )
    if user:
        stmt = stmt.where(users.c.name == user)
    with engine.connect() as conn:
        rows, total = fetch_page(conn, stmt, limit, offset)
    return Page([_token_info(r) for r in rows], total, limit, offset)


def _token_info(r: Any) -> TokenInfo:
    return TokenInfo(
        r.name,
        r.user_name,
        r.created_at,
        r.expires_at,
        r.last_used_at,
        r.revoked_at,
        bool(r.contact_details),
    )
