"""The analyst in a real browser: the steering figures per municipality (completeness, the
conditions at release, costs), with the keyboard alone; aggregates only, small cells not shown;
a case is refused."""

from __future__ import annotations

from terugkeer.security.roles import Role
from tests.browser.conftest import Walk
from tests.feedutil import BSN

BASE = "/portaal/sturing"


def test_the_analyst_reads_the_steering_figures_with_the_keyboard(walk: Walk) -> None:
    walk.sign_in(walk.portal.account(Role.ANALYST), keyboard=True)
    page = walk.page

    walk.follow(page.get_by_role("link", name="Stuurinformatie", exact=True).first)
    walk.check("volledigheid")
    assert page.get_by_role("table").count() >= 1

    walk.choose(page.get_by_label("Meetmoment"), "voor ontslag")
    # a date typed in (an empty Peildatum answers 400 today: reported to the page's owner)
    walk.type_into(page.get_by_label("Peildatum"), "2025-06-30")
    walk.choose(page.get_by_label("Sorteren op"), "cijfer, hoogste eerst")
    walk.follow(page.get_by_role("button", name="Tonen"))
    assert "moment=before_release" in page.url
    assert "peildatum=2025-06-30" in page.url
    walk.check("volledigheid voor ontslag, hoogste eerst")

    for section in ("Bij ontslag", "Kosten"):
        walk.follow(page.get_by_role("link", name=section, exact=True).first)
        walk.check(section.lower())
        text = page.inner_text("main")
        assert "W1" not in text  # no detention period, no person: aggregates only
        assert BSN not in text


def test_a_case_is_not_for_the_analyst(walk: Walk) -> None:
    case = walk.portal.world.cases["W1"]
    walk.sign_in(walk.portal.account(Role.ANALYST))
    walk.goto(f"/portaal/casussen/{case}", "dossier, geen toegang", status=403)
    assert "Geen toegang" in walk.page.inner_text("main")
    assert "W1" not in walk.page.inner_text("body")
