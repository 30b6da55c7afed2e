"""The command line's error contract, for every command of the app (found by walking it, so a
new command is covered the day it is added): an expected error (bad option value, missing
schema, unknown code, unreachable database) is one or two plain lines and exit code 2, with no
traceback; the traceback only with ``--debug``; values never read as markup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from terugkeer.cli import app
from terugkeer.config import get_settings

runner = CliRunner()
HOSTILE = "[bold]nope[/bold]"

# commands that need no database (or make their own): no run on a broken one
NO_DATABASE = {
    "keys generate",
    "synth",
    "demo",
    "reintegration synth",
    "serve",
    "mkba scenarios",  # the shipped files; mkba run reads a store only for such a scenario
}
# commands that create or upgrade the schema before they read: a database without a schema is
# not an error for them (their bad input is another)
CREATE_SCHEMA = {"db upgrade", "reintegration open-cases", "ingest", "user add"}
# never started for real in a test
NEVER_RUN = {"serve"}
# options that make a long-running command stop after one round
ONCE = {"worker": ["--once"], "notify dispatch": ["--once"]}


def _commands() -> Iterator[tuple[str, Any]]:
    root = typer.main.get_command(app)

    def walk(prefix: str, cmd: Any) -> Iterator[tuple[str, Any]]:
        sub = getattr(cmd, "commands", None)
        if sub is None:
            yield prefix, cmd
            return
        for name, child in sorted(sub.items()):
            yield from walk(f"{prefix} {name}".strip(), child)

    yield from walk("", root)


COMMANDS = dict(_commands())


def _value(param: Any, tmp: Path) -> str:
    annotation = str(getattr(getattr(param, "type_descriptor", None), "annotation", ""))
    if "int" in annotation:
        return "987654"
    if "float" in annotation:
        return "1.5"
    if "Path" in annotation or param.name in ("file", "files", "path"):
        return str(tmp / "missing.csv")
    return HOSTILE


def _args(path: str, tmp: Path) -> list[str]:
    """The command's path and its required parameters, each with a value that is wrong for
    it (an unknown id, a missing file, a code with markup in it)."""
    args = path.split()
    for param in COMMANDS[path].params:
        if not param.required:
            continue
        if param.param_type_name == "argument":
            args.append(_value(param, tmp))
        else:
            args += [param.opts[0], _value(param, tmp)]
    return args + ONCE.get(path, [])


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def use(url: str) -> None:
        monkeypatch.setenv("TERUGKEER_DATABASE_URL", url)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def _check(args: list[str], *, stdin: str = "") -> Any:
    result = runner.invoke(app, args, input=stdin)
    shown = f"{' '.join(args)} -> {result.exit_code}\n{result.output}"
    assert "Traceback" not in result.output, shown
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), (shown, result.exception)
    assert result.exit_code == 2, shown
    error_lines = [line for line in (result.stderr or result.output).splitlines() if line.strip()]
    assert 1 <= len(error_lines) <= 2, shown  # one or two plain lines
    assert not any(c in result.stderr for c in "╭╰│"), shown  # no panel
    return result


def test_every_command_is_walked() -> None:
    assert {"ingest", "reintegration costs", "import cases", "notify inbox"} <= set(COMMANDS)
    assert len(COMMANDS) >= 30


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_unknown_option(path: str) -> None:
    result = _check([*path.split(), "--no-such-option"])
    assert "see `" in result.stderr
    assert "--help`" in result.stderr


@pytest.mark.parametrize("path", sorted(set(COMMANDS) - NO_DATABASE - CREATE_SCHEMA))
def test_database_without_schema(path: str, tmp_path: Path, database: Any) -> None:
    database(f"sqlite:///{tmp_path / 'empty.db'}")
    _check(_args(path, tmp_path), stdin="a long enough password 123\n")


@pytest.mark.parametrize("path", sorted(set(COMMANDS) - NO_DATABASE))
def test_unreachable_database(path: str, tmp_path: Path, database: Any) -> None:
    database("postgresql+psycopg://nobody@127.0.0.1:9/nowhere?connect_timeout=2")
    args = _args(path, tmp_path)
    for i, a in enumerate(args):  # a file that is there: the database is what is wrong
        if a.endswith("missing.csv"):
            there = tmp_path / "there.csv"
            there.write_text("dossiernummer;detentiekenmerk\n", encoding="utf-8")
            args[i] = str(there)
    _check(args, stdin="a long enough password 123\n")


@pytest.mark.parametrize(
    "args",
    [
        ["synth", "--out", "x", "--releases", "0"],
        ["demo", "--releases", "5"],
        ["serve", "--port", "70000"],
        ["reintegration", "synth", "--feeds", "/nonexistent/feeds", "--out", "x"],
        ["reintegration", "completeness", "--on", "1-13-2025"],
        ["reintegration", "upcoming", "-m", "GM0363", "--on", "2024-02-30"],
        ["reintegration", "costs", "--van", "gisteren"],
        ["reintegration", "costs", "--van", "01-02-2025", "--tot", "01-01-2025"],
        ["reintegration", "costs", "-m", "GM9999"],
        ["reintegration", "upcoming", "-m", "gm0363x"],
        ["import", "activities", "nope.csv", "-m", "GM0363"],
        ["keys", "generate", "extra"],
    ],
)
def test_bad_values(args: list[str], database: Any, tmp_path: Path) -> None:
    database(f"sqlite:///{tmp_path / 'empty.db'}")
    _check(args)


def test_values_are_not_markup(database: Any, tmp_path: Path) -> None:
    database(f"sqlite:///{tmp_path / 'empty.db'}")
    result = _check(["reintegration", "costs", "-m", "[gm0363]"])
    assert "[gm0363]" in result.stderr


def test_debug_shows_the_traceback(database: Any, tmp_path: Path) -> None:
    database(f"sqlite:///{tmp_path / 'empty.db'}")
    plain = _check(["notify", "inbox", "--recipient-kind", "mayor", "--recipient", "GM0363"])
    assert "terugkeer db upgrade" in plain.stderr
    debug = runner.invoke(
        app, ["--debug", "notify", "inbox", "--recipient-kind", "mayor", "--recipient", "GM0363"]
    )
    assert debug.exit_code != 0
    assert debug.exception is not None
    assert not isinstance(debug.exception, SystemExit)


TYPED_BSN = "936075983"  # passes the 11-proef


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> str:
    from terugkeer.db.engine import make_engine
    from terugkeer.migrations import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('bsn') / 'store.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.mark.parametrize("path", sorted(set(COMMANDS) - NEVER_RUN - {"demo", "synth"}))
def test_a_bsn_typed_into_any_value_is_masked_in_errors(
    path: str, tmp_path: Path, database: Any, upgraded: str
) -> None:
    """Whatever a command's message repeats of its input (an unknown status, a file name, a
    user), a BSN typed there is masked on standard error, as in every other error line."""
    database(upgraded)
    args = path.split()
    for param in COMMANDS[path].params:
        if not param.required and param.name not in ("status", "reason", "user"):
            continue
        value = _value(param, tmp_path)
        if value == HOSTILE:
            value = TYPED_BSN
        elif value.endswith("missing.csv"):
            value = str(tmp_path / f"{TYPED_BSN}.csv")
        else:
            continue
        args += [value] if param.param_type_name == "argument" else [param.opts[0], value]
    result = runner.invoke(app, args + ONCE.get(path, []), input="a long enough password 123\n")
    assert TYPED_BSN not in (result.stderr or ""), (args, result.stderr)


def test_a_bad_setting_is_named_as_it_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not pydantic's "1 validation error for Settings / environment"."""
    monkeypatch.setenv("TERUGKEER_ENVIRONMENT", "foo")
    get_settings.cache_clear()
    try:
        result = _check(["reconcile"])
    finally:
        get_settings.cache_clear()
    assert "setting TERUGKEER_ENVIRONMENT: Input should be 'development'" in result.stderr
    assert "validation error" not in result.stderr


def test_burst_decision_errors_go_to_standard_error(database: Any, upgraded: str) -> None:
    database(upgraded)
    for decision in ("confirm", "void"):
        result = _check(["notify", "burst", decision, "987654", "--by", "operator"])
        assert "no burst alert with id [987654]" in result.stderr
        assert result.stdout == ""
