"""The administrator in a real browser: creating an account with the keyboard alone (a missing
municipality first, then the account), and the new account signs in."""

from __future__ import annotations

from terugkeer.security.roles import Role
from tests.browser.conftest import HOME, Walk
from tests.browser.seed import Account

ACCOUNTS = "/portaal/accounts"
PASSWORD = "een nieuw en lang wachtwoord"


def test_the_administrator_creates_an_account_with_the_keyboard(walk: Walk) -> None:
    walk.sign_in(walk.portal.account(Role.ADMINISTRATOR), keyboard=True)
    page = walk.page

    walk.follow(page.get_by_role("link", name="Accounts", exact=True).first)
    walk.check("accounts")
    assert walk.portal.account(Role.ANALYST).name in page.inner_text("main")

    walk.follow(page.get_by_role("link", name="Nieuw account"))
    walk.check("nieuw account")

    walk.type_into(page.get_by_label("Naam", exact=True), "nieuwe-nazorg")
    walk.choose(page.get_by_label("Rol", exact=True), "Nazorgcoördinator")
    walk.type_into(page.get_by_label("Eerste wachtwoord"), PASSWORD)
    walk.follow(page.get_by_role("button", name="Account aanmaken"), status=400)
    walk.check("nieuw account, gemeente ontbreekt")
    assert "Vul een gemeentecode in, zoals GM0363." in page.inner_text("main")

    walk.type_into(page.get_by_label("Gemeente (code)"), "GM0363")
    walk.type_into(page.get_by_label("Eerste wachtwoord"), PASSWORD)
    walk.follow(page.get_by_role("button", name="Account aanmaken"))
    walk.check("account aangemaakt")
    assert "Het account is aangemaakt." in page.inner_text("main")

    walk.follow(page.get_by_role("link", name="nieuwe-nazorg", exact=True))
    walk.check("het nieuwe account")
    details = page.inner_text("main")
    assert "Nazorgcoördinator" in details
    assert "GM0363" in details

    # the new account signs in and is a caseworker of GM0363
    walk.context.clear_cookies()
    new = Account("nieuwe-nazorg", Role.CASEWORKER, PASSWORD, "GM0363", None)
    walk.sign_in(new)
    assert page.url == walk.url(HOME)
    assert "Nazorgcoördinator, GM0363" in page.inner_text("header")
