"""The administrator's pages: accounts (role, municipality scope, second factor, sessions,
disabling) and API tokens (create, shown once; revoke). Every change is an action of
``security/accounts.py`` in the administrator's name, which writes its audit row, as
``/api/v1/tokens`` and ``/api/v1/gebruikers/...`` do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from terugkeer.security import accounts
from terugkeer.security.actor import Actor
from terugkeer.security.passwords import MIN_PASSWORD_LENGTH, WeakPasswordError
from terugkeer.security.roles import SCOPED_ROLES, Permission, Principal, Role
from terugkeer.web.portal import i18n
from terugkeer.web.portal.pages import ROLE_NAMES, messages, nav, page, pager, render, see_other

router = APIRouter()
Administrator = Annotated[Principal, Depends(page(Permission.USERS_ADMIN))]
UserName = Annotated[str, Path(min_length=1, max_length=100)]
TokenName = Annotated[str, Path(min_length=1, max_length=100)]
Pagina = Annotated[int, Query(ge=1, le=100_000)]
ACCOUNTS = "/portaal/accounts"
TOKENS = "/portaal/api-sleutels"
PURPOSE = "account administration"
# a name is part of the addresses of its pages (accounts.valid_name)
NAME_HINT = "Vul een naam in van 1 tot 100 tekens, zonder schuine streep (/)."
TOO_WEAK = "Het wachtwoord moet ten minste 12 tekens hebben, waarvan 5 verschillende."
T = TypeVar("T")

nav(
    "Accounts",
    ACCOUNTS,
    Permission.USERS_ADMIN,
    order=10,
    description="Accounts met hun rol en gemeente; een nieuwe tweestapsverificatie, "
    "sessies beëindigen, een account uitschakelen.",
)
nav(
    "API-sleutels",
    TOKENS,
    Permission.USERS_ADMIN,
    order=11,
    description="API-sleutels voor koppelingen maken en intrekken.",
)
messages(
    {
        "sessies-beeindigd": "De sessies van het account zijn beëindigd.",
        "uitgeschakeld": "Het account is uitgeschakeld.",
        "ingetrokken": "De API-sleutel is ingetrokken.",
    }
)
i18n.register(
    {
        "Accounts": "Accounts",
        "Accounts met hun rol en gemeente; een nieuwe tweestapsverificatie, sessies "
        "beëindigen, een account uitschakelen.": (
            "Accounts with their role and municipality; a new second factor, end sessions, "
            "disable an account."
        ),
        "API-sleutels": "API tokens",
        "API-sleutels voor koppelingen maken en intrekken.": (
            "Create and revoke API tokens for systems."
        ),
        "De sessies van het account zijn beëindigd.": "The account's sessions have ended.",
        "Het account is uitgeschakeld.": "The account is disabled.",
        "De API-sleutel is ingetrokken.": "The API token is revoked.",
        "Alle rollen": "All roles",
        "Actief": "Active",
        "Uitgeschakeld": "Disabled",
        "Tweestapsverificatie": "Second factor",
        "Aangemaakt": "Created",
        "Nieuw account": "New account",
        "Account aanmaken": "Create account",
        "Er zijn geen accounts die hieraan voldoen.": "No accounts match.",
        "Gemeente (code)": "Municipality (code)",
        "Alleen voor burgemeesterszaken en nazorgcoördinatoren, bijvoorbeeld GM0363.": (
            "Only for the mayor's office and caseworkers, for example GM0363."
        ),
        "Eerste wachtwoord": "First password",
        "Ten minste 12 tekens. Geef het de gebruiker op een veilige manier door.": (
            "At least 12 characters. Pass it on to the user safely."
        ),
        "Het account is aangemaakt.": "The account has been created.",
        "Tweestapsverificatie instellen": "Set up the second factor",
        "Deze gegevens ziet u maar één keer. Geef ze de gebruiker op een veilige manier door; "
        "de gebruiker voert ze in de app op de telefoon in.": (
            "You see this only once. Pass it on to the user safely; they enter it in the app "
            "on their phone."
        ),
        "Geheime sleutel": "Secret key",
        "Koppeling voor de app": "Link for the app",
        "Sessies beëindigen": "End sessions",
        "De gebruiker moet daarna opnieuw inloggen.": "The user must then sign in again.",
        "Nieuwe tweestapsverificatie": "New second factor",
        "Bijvoorbeeld als de telefoon kwijt is. De oude codes werken dan niet meer.": (
            "For example when the phone is lost. The old codes stop working."
        ),
        "Account uitschakelen": "Disable account",
        "De gebruiker kan niet meer inloggen en de API-sleutels werken niet meer. Dit kunt "
        "u hier niet ongedaan maken.": (
            "The user can no longer sign in and their API tokens stop working. You cannot "
            "undo this here."
        ),
        "Ik weet dat dit niet ongedaan kan worden": "I know this cannot be undone",
        "Zet een vinkje als u het account echt wilt uitschakelen.": (
            "Tick the box if you really want to disable the account."
        ),
        "Terug naar de accounts": "Back to the accounts",
        NAME_HINT: "Enter a name of 1 to 100 characters, without a slash (/).",
        "Kies een rol.": "Choose a role.",
        TOO_WEAK: "The password needs at least 12 characters, at least 5 of them different.",
        "Dat kan niet": "That is not possible",
        "Sleutel": "Token",
        "Gebruiker (naam)": "User (name)",
        "Verloopt": "Expires",
        "Laatst gebruikt": "Last used",
        "Ingetrokken op": "Revoked at",
        "Contactgegevens slachtoffers": "Victims' contact details",
        "Intrekken": "Revoke",
        "Nieuwe API-sleutel": "New API token",
        "Naam van de sleutel": "Name of the token",
        "Bijvoorbeeld de naam van het systeem dat hem gebruikt.": (
            "For example the name of the system that uses it."
        ),
        "Deze sleutel mag contactgegevens van slachtoffers lezen": (
            "This token may read victims' contact details"
        ),
        "Alleen voor een koppeling van het IDV.": "Only for a system of the IDV.",
        "Sleutel maken": "Create token",
        "De API-sleutel is gemaakt.": "The API token has been created.",
        "Deze sleutel ziet u maar één keer. Kopieer hem nu en bewaar hem veilig.": (
            "You see this token only once. Copy it now and keep it safe."
        ),
        "Er zijn nog geen API-sleutels.": "There are no API tokens yet.",
        "Geldig": "Valid",
        "Vul de naam van een bestaande gebruiker in.": "Enter the name of an existing user.",
        "Terug naar de API-sleutels": "Back to the API tokens",
        "Vul een gemeentecode in, zoals GM0363.": "Enter a municipality code, such as GM0363.",
        "Deze rol heeft geen gemeente.": "This role has no municipality.",
        "Deze naam bestaat al.": "This name exists already.",
        "Deze rol leest nooit contactgegevens van slachtoffers.": (
            "This role never reads victims' contact details."
        ),
    }
)
ROLES = [("", "Alle rollen"), *((r.value, ROLE_NAMES[r.value]) for r in Role)]


def _actor(principal: Principal) -> Actor:
    return Actor.web(principal, PURPOSE)


def _do(run: Callable[[], T]) -> T:
    try:
        return run()
    except accounts.AccountNotFound as e:
        raise HTTPException(404, "no such account") from e
    except accounts.AccountError as e:
        raise HTTPException(409, "not possible") from e


@router.get(ACCOUNTS, response_class=HTMLResponse)
def accounts_page(
    request: Request,
    principal: Administrator,
    rol: Annotated[str, Query(max_length=24)] = "",
    gemeente: Annotated[str, Query(max_length=6)] = "",
    pagina: Pagina = 1,
) -> Response:
    p = pager(pagina)
    found = accounts.list_users(
        request.app.state.engine,
        role=rol or None,
        municipality=gemeente.strip().upper() or None,
        limit=p.limit,
        offset=p.offset,
    )
    return render(
        request,
        "admin/accounts.html",
        title="Accounts",
        users=found.items,
        pager=p.with_total(found.total),
        roles=ROLES,
        role_names=ROLE_NAMES,
        form={"rol": rol, "gemeente": gemeente},
    )


def _new_form(
    request: Request,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/new_account.html",
        status_code=status_code,
        title="Nieuw account",
        roles=ROLES[1:],
        errors=errors or {},
        form=form or {"naam": "", "rol": "", "gemeente": ""},
        min_length=MIN_PASSWORD_LENGTH,
    )


@router.get(ACCOUNTS + "/nieuw", response_class=HTMLResponse)
def new_account_page(request: Request, principal: Administrator) -> Response:
    return _new_form(request)


def _account_errors(naam: str, rol: str, gemeente: str, wachtwoord: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not accounts.valid_name(naam):
        errors["naam"] = NAME_HINT
    if rol not in {r.value for r in Role}:
        errors["rol"] = "Kies een rol."
    elif Role(rol) in SCOPED_ROLES and not gemeente:
        errors["gemeente"] = "Vul een gemeentecode in, zoals GM0363."
    elif Role(rol) not in SCOPED_ROLES and gemeente:
        errors["gemeente"] = "Deze rol heeft geen gemeente."
    if len(wachtwoord) < MIN_PASSWORD_LENGTH:
        errors["wachtwoord"] = TOO_WEAK
    return errors


@router.post(ACCOUNTS + "/nieuw", response_class=HTMLResponse)
def new_account_submit(
    request: Request,
    principal: Administrator,
    naam: Annotated[str, Form(max_length=200)] = "",
    rol: Annotated[str, Form(max_length=24)] = "",
    gemeente: Annotated[str, Form(max_length=20)] = "",
    wachtwoord: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Create an account; a role with a second factor gets its enrolment shown once."""
    naam, gemeente = naam.strip(), gemeente.strip().upper()
    form = {"naam": naam, "rol": rol, "gemeente": gemeente}
    errors = _account_errors(naam, rol, gemeente, wachtwoord)
    if not errors:
        try:
            created = accounts.add_user(
                request.app.state.engine,
                naam,
                rol,
                wachtwoord,
                gemeente or None,
                actor=_actor(principal),
            )
        except WeakPasswordError:
            errors["wachtwoord"] = TOO_WEAK
        except accounts.AccountError as e:
            if "exists" in str(e):
                errors["naam"] = "Deze naam bestaat al."
            else:
                errors["gemeente"] = "Vul een gemeentecode in, zoals GM0363."
        else:
            return render(
                request,
                "admin/created.html",
                title="Het account is aangemaakt.",
                name=created.name,
                account_role=ROLE_NAMES[created.role.value],
                enrolment=_enrolment(created.totp_uri),
            )
    return _new_form(request, errors=errors, form=form, status_code=400)


def _enrolment(uri: str | None) -> dict[str, str] | None:
    """The secret and the otpauth link of a new second factor, to show once."""
    if uri is None:
        return None
    secret = uri.split("secret=", 1)[1].split("&", 1)[0] if "secret=" in uri else ""
    return {"uri": uri, "secret": secret}


def _user_page(
    request: Request, naam: str, *, errors: dict[str, str] | None = None, status_code: int = 200
) -> Response:
    found = accounts.list_users(request.app.state.engine, name=naam, limit=1).items
    if not found:
        raise HTTPException(404, "no such account")
    return render(
        request,
        "admin/account.html",
        status_code=status_code,
        title="Accounts",
        user=found[0],
        role_names=ROLE_NAMES,
        errors=errors or {},
    )


@router.get(ACCOUNTS + "/{naam}", response_class=HTMLResponse)
def account_page(request: Request, principal: Administrator, naam: UserName) -> Response:
    return _user_page(request, naam)


@router.post(ACCOUNTS + "/{naam}/sessies-beeindigen", response_class=HTMLResponse)
def end_sessions_submit(request: Request, principal: Administrator, naam: UserName) -> Response:
    engine = request.app.state.engine
    _do(lambda: accounts.end_sessions(engine, naam, actor=_actor(principal)))
    return see_other(f"{ACCOUNTS}/{naam}", bericht="sessies-beeindigd")


@router.post(ACCOUNTS + "/{naam}/tweede-factor", response_class=HTMLResponse)
def reset_second_factor_submit(
    request: Request, principal: Administrator, naam: UserName
) -> Response:
    """A new second factor: the enrolment is shown on this answer only."""
    engine = request.app.state.engine
    renewed = _do(lambda: accounts.reset_second_factor(engine, naam, actor=_actor(principal)))
    return render(
        request,
        "admin/created.html",
        title="Nieuwe tweestapsverificatie",
        name=renewed.name,
        account_role=ROLE_NAMES[renewed.role.value],
        enrolment=_enrolment(renewed.totp_uri),
    )


@router.post(ACCOUNTS + "/{naam}/uitschakelen", response_class=HTMLResponse)
def disable_submit(
    request: Request,
    principal: Administrator,
    naam: UserName,
    zeker: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    if zeker != "1":
        errors = {"zeker": "Zet een vinkje als u het account echt wilt uitschakelen."}
        return _user_page(request, naam, errors=errors, status_code=400)
    engine = request.app.state.engine
    _do(lambda: accounts.disable_user(engine, naam, actor=_actor(principal)))
    return see_other(f"{ACCOUNTS}/{naam}", bericht="uitgeschakeld")


def _tokens_page(
    request: Request,
    pagina: int,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    p = pager(pagina)
    found = accounts.token_page(request.app.state.engine, limit=p.limit, offset=p.offset)
    return render(
        request,
        "admin/tokens.html",
        status_code=status_code,
        title="API-sleutels",
        tokens=found.items,
        pager=p.with_total(found.total),
        errors=errors or {},
        form=form or {"naam": "", "gebruiker": "", "contact": ""},
    )


@router.get(TOKENS, response_class=HTMLResponse)
def tokens_page(request: Request, principal: Administrator, pagina: Pagina = 1) -> Response:
    return _tokens_page(request, pagina)


@router.post(TOKENS, response_class=HTMLResponse)
def new_token_submit(
    request: Request,
    principal: Administrator,
    naam: Annotated[str, Form(max_length=200)] = "",
    gebruiker: Annotated[str, Form(max_length=200)] = "",
    contact: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    """Create an API token; the token is shown on this answer only."""
    naam, gebruiker = naam.strip(), gebruiker.strip()
    form = {"naam": naam, "gebruiker": gebruiker, "contact": contact}
    errors: dict[str, str] = {}
    if not accounts.valid_name(naam):
        errors["naam"] = NAME_HINT
    if not gebruiker or len(gebruiker) > 100:
        errors["gebruiker"] = "Vul de naam van een bestaande gebruiker in."
    if not errors:
        try:
            token = accounts.create_token(
                request.app.state.engine,
                naam,
                gebruiker,
                actor=_actor(principal),
                contact_details=contact == "1",
            )
        except accounts.AccountError as e:
            text = str(e)
            if text.startswith("no user"):
                errors["gebruiker"] = "Vul de naam van een bestaande gebruiker in."
            elif "never reads" in text:
                errors["contact"] = "Deze rol leest nooit contactgegevens van slachtoffers."
            else:
                errors["naam"] = "Deze naam bestaat al."
        else:
            return render(
                request,
                "admin/token_created.html",
                title="De API-sleutel is gemaakt.",
                name=naam,
                token=token,
            )
    return _tokens_page(request, 1, errors=errors, form=form, status_code=400)


@router.post(TOKENS + "/{token}/intrekken", response_class=HTMLResponse)
def revoke_submit(request: Request, principal: Administrator, token: TokenName) -> Response:
    engine = request.app.state.engine
    _do(lambda: accounts.revoke_token(engine, token, actor=_actor(principal)))
    return see_other(TOKENS, bericht="ingetrokken")
