"""The operator (Justid) in a real browser: confirming a held burst of releases and replaying a
quarantined message (its raw content opened first), with the keyboard alone."""

from __future__ import annotations

from sqlalchemy import func, select

from terugkeer.notify.tables import deliveries
from terugkeer.security.roles import Role
from tests.browser.conftest import Walk

BASE = "/portaal/beheer"


def _held(walk: Walk) -> int:
    with walk.portal.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(deliveries).where(deliveries.c.status == "held")
            ).scalar_one()
        )


def test_the_operator_confirms_a_burst_and_replays_a_message_with_the_keyboard(
    walk: Walk,
) -> None:
    message = walk.portal.world.quarantined[0]  # an unknown kind: refused again on replay
    assert _held(walk) > 0
    walk.sign_in(walk.portal.account(Role.OPERATOR), keyboard=True)
    page = walk.page

    walk.follow(page.get_by_role("link", name="Beheer", exact=True).first)
    walk.check("beheer")
    assert "1 pieken wachten op uw besluit" in page.inner_text("main")

    walk.follow(page.get_by_role("link", name="Aanlevering en pieken").first)
    walk.check("aanlevering en pieken", readme="aanlevering-beheer")
    confirm = page.get_by_role("button", name="Bevestigen: PI-ZWO, 25 ontslagen")
    walk.follow(confirm)
    walk.check("piek bevestigd")
    main = page.inner_text("main")
    assert "de aangehouden meldingen worden nu verzonden" in main
    assert "Er wachten geen pieken op een besluit." in main
    assert _held(walk) == 0

    walk.follow(page.get_by_role("link", name="Quarantaine", exact=True).first)
    walk.check("quarantaine")
    walk.choose(page.get_by_label("Reden"), "unknown_kind")
    walk.follow(page.get_by_role("button", name="Filteren"))
    walk.check("quarantaine, unknown_kind")
    row = page.locator(
        "tr",
        has=page.get_by_role("button", name=f"Opnieuw verwerken: bericht {message}", exact=True),
    )
    walk.press_on(row.get_by_text("Bericht tonen"))  # opens the raw message
    assert "teleport" in row.locator("pre").inner_text()
    walk.follow(row.get_by_role("button"))
    walk.check("quarantaine, opnieuw aangeboden")
    assert "kon weer niet worden verwerkt" in page.inner_text("main")
