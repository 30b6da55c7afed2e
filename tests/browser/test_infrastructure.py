"""The checks the walks rely on can fail: axe finds a form field without a label and a contrast
too low, and a store's seeded world has what the walks act on."""

from __future__ import annotations

import subprocess

from playwright.sync_api import Browser

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    Portal,
    axe_violations,
    describe,
)

BAD_PAGE = """<!doctype html><html lang="nl"><head><title>fout</title></head><body><main>
<h1>Een slechte pagina</h1><input type="text">
<p style="color:#bbb;background:#fff">te licht</p></main></body></html>"""
GOOD_PAGE = BAD_PAGE.replace('<input type="text">', '<label>Naam <input type="text"></label>')
GOOD_PAGE = GOOD_PAGE.replace("#bbb", "#333")


def test_axe_finds_a_missing_label_and_low_contrast(browser: Browser) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_content(BAD_PAGE)
        found = {v["id"] for v in axe_violations(page)}
        assert {"label", "color-contrast"} <= found, describe(axe_violations(page))
        page.set_content(GOOD_PAGE)
        assert axe_violations(page) == []
    finally:
        context.close()


def test_the_browser_is_debians_chromium(browser: Browser) -> None:
    """The walks drive the Chromium the Makefile installs from Debian, never a downloaded one."""
    assert "--headless=new" in CHROMIUM_ARGS
    shown = subprocess.run(  # noqa: S603 (a fixed path, our own arguments)
        [str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert f"Chromium {browser.version}" in shown


def test_the_seeded_world_has_what_the_walks_need(portal: Portal) -> None:
    world = portal.world
    assert world.home_notices
    assert world.other_notices
    assert world.burst_alerts
    assert world.quarantined
    assert {a.role for a in world.accounts.values() if a.totp_secret} == {
        "operator",
        "idv_officer",
        "administrator",
    }
