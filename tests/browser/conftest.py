"""The portal in a real browser: Debian's Chromium driven by Playwright against terugkeer served
by uvicorn on a loopback port, on a seeded store (SQLite and PostgreSQL).

- One browser per test session, one server per store (session fixtures); a new browser context
  per test, so no cookie carries over unless a test signs in.
- Every page a test reaches must be checked (``Walk.check``): axe-core with the WCAG 2.1 A and
  AA rules and zero violations, no script error or CSP violation in the console, no failed
  stylesheet or script, and a screenshot under ``TERUGKEER_SCREENSHOTS`` (default: the test's
  temporary folder). A test that reaches a page without checking it fails at teardown.
- axe (``node_modules/axe-core/axe.min.js``) is put in every document of a walk through the
  DevTools protocol (a script evaluated on each new document), not added as a ``<script>`` (the
  portal's CSP forbids inline scripts, rightly): the page's CSP stays in force, so a template
  that breaks it fails here.
- No Chromium at ``TERUGKEER_CHROMIUM`` (default ``/usr/bin/chromium``): the tests are skipped,
  or fail when ``TERUGKEER_REQUIRE_BROWSER=1`` (CI). Nothing is ever downloaded.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Locator, Page, sync_playwright
from sqlalchemy import Engine

from terugkeer.db.engine import make_engine
from terugkeer.security.roles import Role
from terugkeer.web.app import create_app
from tests.browser.seed import Account, World, seed
from tests.conftest import drop_pg_database, make_pg_database

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path(os.environ.get("TERUGKEER_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = os.environ.get("TERUGKEER_REQUIRE_BROWSER") == "1"
# README screenshots (python -m tools.screenshots): written here, from the SQLite walk only
README_SHOTS = os.environ.get("TERUGKEER_README_SCREENSHOTS")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SIGN_IN = "/portaal/inloggen"
HOME = "/portaal/"


# -- the browser --------------------------------------------------------------------------------


def _missing_browser() -> str | None:
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (make browser installs Debian's chromium)"
    if not AXE.exists():
        return f"no axe-core at {AXE} (make test installs the Node packages)"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    missing = _missing_browser()
    if missing:
        if REQUIRE_BROWSER:
            pytest.fail(missing + "; TERUGKEER_REQUIRE_BROWSER=1 makes this a failure")
        pytest.skip(missing)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


# -- the server ---------------------------------------------------------------------------------


class Server:
    """terugkeer's app served by uvicorn in a thread, on a loopback port of its own."""

    def __init__(self, engine: Engine) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            create_app(engine), log_config=None, access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()


@dataclass
class Portal:
    """A seeded store served over HTTP, and what the walks know about it."""

    store: str
    url: str
    engine: Engine
    world: World
    # a signed-in browser state per account (a one-time code is accepted once: sign in once)
    states: dict[str, Any] = field(default_factory=dict)
    last_step: dict[str, int] = field(default_factory=dict)

    def account(self, role: Role) -> Account:
        return self.world.accounts[role]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def portal(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Portal]:
    store = request.param
    workdir = tmp_path_factory.mktemp(f"portal-{store}")
    admin, url = None, f"sqlite:///{workdir / 'portal.db'}"
    if store == "postgresql":
        admin = request.getfixturevalue("pg_admin")
        url = make_pg_database(admin)
    engine = make_engine(url)
    try:
        world = seed(engine, workdir)
        server = Server(engine)
        try:
            yield Portal(store, server.url, engine, world)
        finally:
            server.stop()
    finally:
        engine.dispose()
        if admin is not None:
            drop_pg_database(admin, url)


# the store-independent checks (sign-in variants, error pages) run on SQLite only; the role's
# walks and the scope refusals on both stores
SQLITE_ONLY = pytest.mark.parametrize("portal", ["sqlite"], indirect=True)


# -- one walk: a browser context, the checks on every page --------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now."""
    if not page.evaluate("typeof window.axe === 'object'"):  # a page of no walk's context
        page.evaluate(AXE.read_text(encoding="utf-8"))  # DevTools protocol: not subject to CSP
    result: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags},
                                               resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map(n => n.target.join(' ')),
                summary: v.nodes.slice(0, 3).map(n => n.failureSummary)}));
        }""",
        WCAG,
    )
    return result


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']}")
        for target in v["targets"][:8]:
            lines.append(f"    at {target}")
        for summary in v["summary"][:1]:
            lines.append("    " + (summary or "").replace("\n", "\n    "))
    return "\n".join(lines)


class Walk:
    """A test's browser context and page, with the checks every page reached must pass."""

    def __init__(self, portal: Portal, context: BrowserContext, shots: Path, test: str) -> None:
        self.portal, self.context, self.shots, self.test = portal, context, shots, test
        self.page = context.new_page()
        self.keyboard_only = portal.store == "sqlite"
        self.problems: list[str] = []
        self.visited: list[str] = []
        self.checked: set[str] = set()
        self.count = 0
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))
        self.page.on("response", self._response)
        self.page.on("framenavigated", self._navigated)

    # what the page does behind the walk's back
    def _console(self, message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console error on {self.page.url}: {message.text}")

    def _response(self, response: Any) -> None:
        kind = response.request.resource_type
        if kind in ("stylesheet", "script", "image", "font") and response.status >= 400:
            self.problems.append(f"{kind} {response.url} answered {response.status}")

    def _navigated(self, frame: Any) -> None:
        if frame == self.page.main_frame:
            self.visited.append(frame.url)

    # navigation
    def url(self, path: str) -> str:
        return self.portal.url + path

    def goto(self, path: str, name: str, *, status: int | None = 200, readme: str = "") -> Page:
        """Open ``path``, expect ``status``, and check the page."""
        response = self.page.goto(self.url(path))
        assert response is not None
        if status is not None:
            assert response.status == status, f"{path}: {response.status}"
        self.check(name, readme=readme)
        return self.page

    def check(self, name: str, *, readme: str = "", readme_at: Locator | None = None) -> None:
        """axe on the page as it is now (zero violations), a screenshot, no console errors so
        far. ``readme`` names the picture ``python -m tools.screenshots`` keeps in
        docs/screenshots (from the SQLite walk), scrolled to ``readme_at`` when given."""
        page = self.page
        page.wait_for_load_state("load")
        self.count += 1
        stem = f"{self.count:02d}-{_slug(name)}"
        page.screenshot(path=str(self.shots / f"{stem}.jpeg"), quality=70)  # the viewport
        if readme and README_SHOTS and self.portal.store == "sqlite":
            Path(README_SHOTS).mkdir(parents=True, exist_ok=True)
            if readme_at is not None:
                readme_at.evaluate("el => el.scrollIntoView({block: 'start'})")
            page.screenshot(path=str(Path(README_SHOTS) / f"{readme}.png"))
        violations = axe_violations(page)
        self.checked.add(page.url)
        if violations or self.problems:  # the whole page, to see what failed
            page.screenshot(path=str(self.shots / f"{stem}-full.jpeg"), full_page=True, quality=70)
        assert not violations, (
            f"axe: {len(violations)} WCAG 2.1 A/AA violation(s) on {name} ({page.url}):\n"
            + describe(violations)
        )
        assert not self.problems, "\n".join(self.problems)

    # keyboard-only use
    def tab_to(self, target: Locator, *, limit: int = 120, back: bool = False) -> None:
        """Press Tab (Shift+Tab with ``back``) until ``target`` has the focus. On PostgreSQL
        (the same walks again, for the store) the focus is put on ``target`` directly: the
        keyboard-only walking is tested on SQLite, and a Tab costs two round trips."""
        if not self.keyboard_only:
            target.focus()
            return
        key = "Shift+Tab" if back else "Tab"
        element = target.element_handle()
        for _ in range(limit):
            self.page.keyboard.press(key)
            if element.evaluate("el => el === document.activeElement"):
                return
        focused = self.page.evaluate("document.activeElement && document.activeElement.outerHTML")
        raise AssertionError(
            f"{target} never got the focus in {limit} presses of {key} on {self.page.url}; "
            f"the focus is on {str(focused)[:200]}"
        )

    def press_on(self, target: Locator, key: str = "Enter") -> None:
        """Reach ``target`` with the keyboard and press ``key`` (Enter, or Space)."""
        self.tab_to(target)
        self.page.keyboard.press(key)

    def follow(self, target: Locator, *, status: int = 200, key: str = "Enter") -> None:
        """Reach a link or button with Tab, press ``key`` and expect the page it leads to to
        answer ``status`` (after any redirect)."""
        with self.page.expect_navigation() as navigation:
            self.press_on(target, key)
        response = navigation.value
        answered = response.status if response is not None else None
        assert answered == status, f"{self.page.url} answered {answered}, expected {status}"

    def choose(self, select: Locator, option: str) -> None:
        """Reach a ``<select>`` with Tab and pick the option shown as ``option`` with the
        arrow keys."""
        self.tab_to(select)
        for key in ["Home"] + ["ArrowDown"] * 30:
            self.page.keyboard.press(key)
            if select.evaluate("el => el.options[el.selectedIndex].text.trim()") == option:
                return
        raise AssertionError(f"no option {option!r} in {select}")

    def type_into(self, target: Locator, text: str, *, replace: bool = False) -> None:
        """Reach a field with Tab and type ``text`` (over what it holds, with ``replace``)."""
        self.tab_to(target)
        if replace:
            self.page.keyboard.press("Control+A")
            self.page.keyboard.press("Delete")
        self.page.keyboard.type(text)

    # signing in
    def sign_in(
        self, account: Account, *, keyboard: bool = False, readme: bool = False, landing: str = ""
    ) -> None:
        """Sign in through the sign-in form (name, password and, when the account has a second
        factor, the one-time code), typing with the keyboard alone with ``keyboard``, and check
        the page it lands on (``landing``: its README picture's name); or reuse this store's
        signed-in state of the account (no page reached)."""
        state = self.portal.states.get(account.name)
        if state is not None and not keyboard:
            self.context.add_cookies(state["cookies"])
            return
        self.goto(SIGN_IN, "inloggen", readme="inloggen" if readme else "")
        fields = [
            (self.page.get_by_label("Naam", exact=True), account.name),
            (self.page.get_by_label("Wachtwoord", exact=True), account.password),
        ]
        if account.totp_secret:
            fields.append((self.page.get_by_label("Code", exact=True), self.one_time_code(account)))
        self._fill_and_submit(fields, keyboard)
        assert SIGN_IN not in self.page.url, "sign-in refused"
        self.check(f"ingelogd als {account.role.value}", readme=landing)
        self.portal.states[account.name] = self.context.storage_state()

    def _fill_and_submit(self, fields: list[tuple[Locator, str]], keyboard: bool) -> None:
        for locator, value in fields:
            if keyboard:
                self.type_into(locator, value)
            else:
                locator.fill(value)
        with self.page.expect_navigation():
            self.page.keyboard.press("Enter")  # in the last field: submits the form

    def one_time_code(self, account: Account) -> str:
        """A code for a later time step than the last one used (each is accepted once)."""
        assert account.totp_secret
        last = self.portal.last_step.get(account.name, 0)
        while True:  # the server accepts the step before, this one and the next
            now = int(time.time()) // 30
            step = max(now, last + 1)
            if step <= now + 1:
                break
            time.sleep(0.5)
        self.portal.last_step[account.name] = step
        return pyotp.TOTP(account.totp_secret).at(step * 30)

    def close(self, *, failed: bool) -> None:
        unchecked = [u for u in self.visited if u not in self.checked and u != "about:blank"]
        self.context.close()
        assert failed or not unchecked, (
            f"pages reached but not checked (axe, screenshot): {unchecked}"
        )


@pytest.fixture
def walk(
    browser: Browser, portal: Portal, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Walk]:
    base = Path(os.environ.get("TERUGKEER_SCREENSHOTS") or tmp_path)
    shots = base / f"{portal.store}-{_slug(request.node.originalname)}"
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT, locale="nl-NL", timezone_id="Europe/Amsterdam")
    # axe-core in every document of the walk from its start (the DevTools protocol's
    # script-on-new-document: sent once, not subject to the page's CSP)
    context.add_init_script(path=str(AXE))
    context.set_default_timeout(30_000)  # generous: a loaded CI machine, argon2 at sign-in
    w = Walk(portal, context, shots, request.node.name)
    yield w
    w.close(failed=request.node.stash.get(CALL_FAILED, False))


CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember whether a test's call failed (then its unchecked pages are no news)."""
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report
