"""Commands for keys (and, later, users and tokens)."""

from __future__ import annotations

import typer
from rich.console import Console

from terugkeer.db.engine import make_engine

out = Console()


def register(app: typer.Typer) -> None:
    keys_app = typer.Typer(help="Encryption keys for sensitive fields.", no_args_is_help=True)
    app.add_typer(keys_app, name="keys")

    @keys_app.command("generate")
    def generate() -> None:
        """Print a new random 256-bit key (add it as id:key to TERUGKEER_ENCRYPTION_KEYS)."""
        from terugkeer.security.crypto import generate_key

        out.print(generate_key())

    @keys_app.command("rotate")
    def rotate_keys() -> None:
        """Re-encrypt every sensitive field to the newest key in TERUGKEER_ENCRYPTION_KEYS."""
        from terugkeer.security.keys import rotate

        report = rotate(make_engine())
        out.print(
            f"active key [{report.active_key}]: re-encrypted {report.rewritten}, "
            f"already current {report.already_current}"
        )
