"""Roles and the permissions they carry. Every route and service declares the permission it
needs; nothing is allowed by default."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operator"  # Justid functioneel beheer
    MAYOR_OFFICE = "mayor_office"  # OOV-adviseur van de burgemeester
    IDV_OFFICER = "idv_officer"  # OM Informatiepunt Detentieverloop
    CASEWORKER = "caseworker"  # nazorgcoördinator van de gemeente
    ANALYST = "analyst"  # ministerie, WODC, VNG, gemeente: aggregates only
    AUDITOR = "auditor"  # privacy officer
    ADMINISTRATOR = "administrator"  # beheer van accounts
    FEED = "feed"  # a prison administration system sending detention events


class Permission(StrEnum):
    NOTICES_READ = "notices:read"  # scoped: own municipality / the IDV
    NOTICES_ACKNOWLEDGE = "notices:acknowledge"
    VICTIM_CONTACT_READ = "victims:contact:read"
    CASES_READ = "cases:read"  # scoped: own municipality, consent
    CASES_WRITE = "cases:write"
    MONITOR_READ = "monitor:read"  # aggregates, small cells suppressed
    MKBA_RUN = "mkba:run"  # cost-benefit scenarios and their runs (aggregates only)
    OPERATIONS_READ = "operations:read"  # obligations, alerts, quarantine, feeds
    OPERATIONS_ACT = "operations:act"  # burst decisions, backfill, replay
    FEED_WRITE = "feed:write"
    AUDIT_READ = "audit:read"
    USERS_ADMIN = "users:admin"
    HEALTH_READ = "health:read"  # public


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset({Permission.OPERATIONS_READ, Permission.OPERATIONS_ACT}),
    Role.MAYOR_OFFICE: frozenset({Permission.NOTICES_READ, Permission.NOTICES_ACKNOWLEDGE}),
    Role.IDV_OFFICER: frozenset(
        {Permission.NOTICES_READ, Permission.NOTICES_ACKNOWLEDGE, Permission.VICTIM_CONTACT_READ}
    ),
    Role.CASEWORKER: frozenset(
        {
            Permission.CASES_READ,
            Permission.CASES_WRITE,
            Permission.NOTICES_READ,
            Permission.NOTICES_ACKNOWLEDGE,
        }
    ),
    Role.ANALYST: frozenset({Permission.MONITOR_READ, Permission.MKBA_RUN}),
    Role.AUDITOR: frozenset({Permission.AUDIT_READ}),
    Role.ADMINISTRATOR: frozenset({Permission.USERS_ADMIN}),
    Role.FEED: frozenset({Permission.FEED_WRITE}),
}

SCOPED_ROLES = frozenset({Role.MAYOR_OFFICE, Role.CASEWORKER})
SECOND_FACTOR_ROLES = frozenset({Role.OPERATOR, Role.IDV_OFFICER, Role.ADMINISTRATOR})
# held by the role, but exercised only with the second factor (a session signed in with it),
# or with an API token an administrator granted it to explicitly (audited)
SECOND_FACTOR_PERMISSIONS = frozenset({Permission.VICTIM_CONTACT_READ})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a signed-in user or an API token's user."""

    name: str
    role: Role
    municipality: str | None = None
    # a session signed in with the second factor, or a token granted contact details
    second_factor: bool = False

    def can(self, permission: Permission) -> bool:
        if permission is Permission.HEALTH_READ:
            return True
        if permission in SECOND_FACTOR_PERMISSIONS and not self.second_factor:
            return False
        return permission in ROLE_PERMISSIONS[self.role]
