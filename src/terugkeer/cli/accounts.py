"""Commands for users, API tokens, keys and the audit log."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from terugkeer.cli.common import AsOpt, PurposeOpt, actor, out
from terugkeer.db.engine import make_engine
from terugkeer.migrations import upgrade

keys_app = typer.Typer(help="Encryption keys for sensitive fields.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for feeds and other systems.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


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
    who: AsOpt = None,
    purpose: PurposeOpt = "account administration",
) -> None:
    """Create an API token; it is printed once and only its hash is kept.

    A `create` of record type `api_token` in the audit log, by whoever runs the command."""
    from terugkeer.security.accounts import AccountError, create_token

    by = actor("token create", who, purpose)
    try:
        token = create_token(make_engine(), name, user, actor=by)
    except AccountError as e:
        out.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    out.print(token, soft_wrap=True)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain; exits 1 at the first break.

    Shows a count and at most the id of a broken entry: no audit row."""
    from terugkeer.security.audit import verify

    report = verify(make_engine())
    if report.ok:
        out.print(f"audit log intact: {report.entries} entries")
        return
    out.print(f"[red]audit log broken at entry {report.first_bad_id}: {report.problem}[/red]")
    raise typer.Exit(1)


@keys_app.command("generate")
def generate() -> None:
    """Print a new random 256-bit key (add it as id:key to TERUGKEER_ENCRYPTION_KEYS)."""
    from terugkeer.security.crypto import generate_key

    out.print(generate_key())


@keys_app.command("rotate")
def rotate_keys(who: AsOpt = None, purpose: PurposeOpt = "key rotation") -> None:
    """Re-encrypt every sensitive field to the newest key in TERUGKEER_ENCRYPTION_KEYS.

    A machine job over every victim's contact details (shown to no one): one audit row
    per run with the counts."""
    from terugkeer.detention.contacts import rotate

    report = rotate(make_engine(), actor=actor("keys rotate", who, purpose))
    out.print(
        f"active key [{report.active_key}]: re-encrypted {report.rewritten}, "
        f"already current {report.already_current}"
    )


def register(app: typer.Typer) -> None:
    """Add this module's groups to the top-level app."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
    app.add_typer(audit_app, name="audit")
