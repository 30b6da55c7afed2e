"""Commands for users, API tokens, keys and the audit log."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from terugkeer.cli.common import AsOpt, PurposeOpt, actor, out
from terugkeer.db.engine import make_engine
from terugkeer.migrations import upgrade

keys_app = typer.Typer(help="Encryption keys for sensitive fields.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for feeds and other systems.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
session_app = typer.Typer(help="Sessions of signed-in users.", no_args_is_help=True)


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[
        str,
        typer.Option(
            help="operator, mayor_office, idv_officer, caseworker, analyst, auditor, administrator, feed"
        ),
    ],
    municipality: Annotated[
        str | None, typer.Option(help="GMnnnn, for mayor_office and caseworker")
    ] = None,
    who: AsOpt = None,
    purpose: PurposeOpt = "account administration",
) -> None:
    """Add a user; the password is read from standard input (never an argument).

    A `create` of record type `user` in the audit log, by whoever runs the command."""
    from terugkeer.security.accounts import AccountError, add_user
    from terugkeer.security.passwords import WeakPasswordError

    by = actor("user add", who, purpose)
    password = sys.stdin.readline().rstrip("\n")
    engine = make_engine()
    upgrade(engine)
    try:
        created = add_user(engine, name, role, password, municipality, actor=by)
    except (AccountError, WeakPasswordError) as e:
        out.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    out.print(f"user [{created.name}] added with role {created.role}")
    if created.totp_uri:
        out.print("second factor required; enrol this in an authenticator app (shown once):")
        out.print(created.totp_uri, soft_wrap=True)


@token_app.command("create")
def token_create(
    name: str,
    user: Annotated[str, typer.Option(help="the user the token acts as")],
    contact_details: Annotated[
        bool,
        typer.Option(
            "--contact-details",
            help="grant it victims' contact details (an IDV system; tokens have no second factor)",
        ),
    ] = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "account administration",
) -> None:
    """Create an API token; it is printed once and only its hash is kept. It expires after
    TERUGKEER_TOKEN_DAYS days (default 90).

    A `create` of record type `api_token` in the audit log, by whoever runs the command
    (naming a grant of contact details)."""
    from terugkeer.security.accounts import AccountError, create_token

    by = actor("token create", who, purpose)
    try:
        token = create_token(make_engine(), name, user, actor=by, contact_details=contact_details)
    except AccountError as e:
        out.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    out.print(token, soft_wrap=True)


def _account_action(command: str, who: str | None, purpose: str, run: Any) -> Any:
    """Run an account action as whoever runs ``command``; an AccountError is two plain lines
    and exit code 2."""
    from terugkeer.security.accounts import AccountError

    by = actor(command, who, purpose)
    try:
        return run(make_engine(), by)
    except AccountError as e:
        out.print(f"[red]{command}: {e}[/red]")
        raise typer.Exit(2) from e


@token_app.command("revoke")
def token_revoke(
    name: str, who: AsOpt = None, purpose: PurposeOpt = "account administration"
) -> None:
    """Revoke an API token: it stops working at once. A `revoke` of `api_token`."""
    from terugkeer.security.accounts import revoke_token

    _account_action("token revoke", who, purpose, lambda e, by: revoke_token(e, name, actor=by))
    out.print(f"token [{name}] revoked")


@token_app.command("grant-contacts")
def token_grant_contacts(
    name: str,
    withdraw: Annotated[bool, typer.Option("--withdraw", help="take the grant back")] = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "account administration",
) -> None:
    """Grant an IDV system's token the reading of victims' contact details (or withdraw it).
    A `grant_contacts` / `withdraw_contacts` of `api_token`."""
    from terugkeer.security.accounts import grant_contact_details

    _account_action(
        "token grant-contacts",
        who,
        purpose,
        lambda e, by: grant_contact_details(e, name, not withdraw, actor=by),
    )
    out.print(f"token [{name}]: contact details {'withdrawn' if withdraw else 'granted'}")


@token_app.command("list")
def token_list() -> None:
    """The API tokens (never the tokens themselves): user, expiry, last use, revoked, grant.
    Accounts only: no audit row."""
    from terugkeer.security.accounts import list_tokens

    for t in list_tokens(make_engine()):
        state = "revoked" if t.revoked_at else f"expires {t.expires_at.date().isoformat()}"
        used = t.last_used_at.date().isoformat() if t.last_used_at else "never"
        grant = ", contact details" if t.contact_details else ""
        out.print(f"{t.name}\tuser {t.user}\t{state}\tlast used {used}{grant}")


@user_app.command("disable")
def user_disable(
    name: str, who: AsOpt = None, purpose: PurposeOpt = "account administration"
) -> None:
    """Disable a user: no sign-in, sessions end, tokens stop working. A `disable` of `user`."""
    from terugkeer.security.accounts import disable_user

    ended = _account_action(
        "user disable", who, purpose, lambda e, by: disable_user(e, name, actor=by)
    )
    out.print(f"user [{name}] disabled; {ended} session(s) ended")


@user_app.command("reset-2fa")
def user_reset_2fa(
    name: str, who: AsOpt = None, purpose: PurposeOpt = "account administration"
) -> None:
    """A new second factor for a user (a lost or exposed authenticator): the old codes stop
    working and the user's sessions end; the new enrolment is shown once. A `reset_2fa` of
    `user`."""
    from terugkeer.security.accounts import reset_second_factor

    renewed = _account_action(
        "user reset-2fa", who, purpose, lambda e, by: reset_second_factor(e, name, actor=by)
    )
    out.print(f"user [{name}]: enrol this in an authenticator app (shown once):")
    out.print(renewed.totp_uri, soft_wrap=True)


@session_app.command("end")
def session_end(
    user: Annotated[str, typer.Argument(help="the user whose sessions end")],
    who: AsOpt = None,
    purpose: PurposeOpt = "account administration",
) -> None:
    """End every live session of a user (they sign in again). An `end_sessions` of `user`."""
    from terugkeer.security.accounts import end_sessions

    ended = _account_action(
        "session end", who, purpose, lambda e, by: end_sessions(e, user, actor=by)
    )
    out.print(f"user [{user}]: {ended} session(s) ended")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's chain, its key marks and the last checkpoint in
    TERUGKEER_AUDIT_CHECKPOINT_FILE; exits 1 at the first break.

    Shows a count and at most the id of a broken entry: no audit row."""
    from terugkeer.security.audit import verify

    report = verify(make_engine())
    if report.ok:
        against = (
            f", up to the checkpoint of entry {report.checkpoint}"
            if report.checkpoint is not None
            else ""
        )
        out.print(f"audit log intact: {report.entries} entries{against}")
        if report.warning:
            out.print(f"[yellow]{report.warning}[/yellow]")
        return
    if report.first_bad_id is None:
        out.print(f"[red]audit log cannot be checked: {report.problem}[/red]")
    else:
        out.print(f"[red]audit log broken at entry {report.first_bad_id}: {report.problem}[/red]")
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Append a signed checkpoint of the audit log's head to TERUGKEER_AUDIT_CHECKPOINT_FILE now
    (the worker does so every check cycle). No personal data, no audit row."""
    from terugkeer.config import get_settings
    from terugkeer.security.audit import write_checkpoint

    if not get_settings().audit_checkpoint_file:
        out.print("[red]TERUGKEER_AUDIT_CHECKPOINT_FILE is not set[/red]")
        raise typer.Exit(2)
    cp = write_checkpoint(make_engine())
    if cp is None:
        out.print("the last checkpoint already pins the head")
    else:
        out.print(f"checkpoint: entry {cp.last_id}, {cp.entries} entries")


@keys_app.command("generate")
def generate() -> None:
    """Print a new random 256-bit key (add it as id:key to TERUGKEER_ENCRYPTION_KEYS)."""
    from terugkeer.security.crypto import generate_key

    out.print(generate_key())


@keys_app.command("rotate")
def rotate_keys(who: AsOpt = None, purpose: PurposeOpt = "key rotation") -> None:
    """Re-encrypt everything encrypted to the newest key: victims' contact details, second-factor
    secrets, victim registrations' raw messages, quarantined messages.

    Run it after adding a key to the key file (or TERUGKEER_ENCRYPTION_KEYS), before retiring
    the old one. A machine job (shown to no one): one audit row per run with the counts."""
    from terugkeer.detention.contacts import rotate

    report = rotate(make_engine(), actor=actor("keys rotate", who, purpose))
    out.print(
        f"active key [{report.active_key}]: re-encrypted {report.rewritten}, "
        f"already current {report.already_current}"
    )
    for part, (rewritten, current) in report.parts.items():
        out.print(f"  {part}: re-encrypted {rewritten}, already current {current}")


def register(app: typer.Typer) -> None:
    """Add this module's groups to the top-level app."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
    app.add_typer(session_app, name="session")
    app.add_typer(audit_app, name="audit")
