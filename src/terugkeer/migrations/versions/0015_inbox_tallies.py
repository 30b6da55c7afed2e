"""count each organisation's told notices as they change: the inbox's total without counting

Every inbox request gave its exact total by counting the organisation's notices with a
``delivered_at`` (the told ones) in ``ix_obligations_inbox``: an index-only scan of the whole
history, 20,000 entries and about 5 ms of PostgreSQL's CPU for a large municipality after five
years (bench/portal.py), growing every year. Now triggers on ``obligations`` append a row of
+1 or -1 to ``inbox_tallies`` whenever a notice becomes told or stops being told or changes
recipient, in the transaction that changes it; the inbox adds them up (one row per
organisation once the worker has folded them, notify/delivery/tallies.py). Only rows are
appended, never updated, so two transactions telling notices of the same organisation do not
wait for each other.

The triggers live in the database so that every path that writes ``obligations`` keeps the
count, those of today and those to come. A later migration that has SQLite rebuild
``obligations`` (``batch_alter_table`` with a change SQLite cannot make in place) drops them
and must create them again (:data:`SQLITE_TRIGGERS`).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the organisation a notice counts for: a victim's notice is in the IDV's inbox, any victim
# (written out in PG_TRIGGERS too)
REF = "CASE WHEN {r}.recipient_kind = 'victim' THEN '' ELSE coalesce({r}.recipient_ref, '') END"
SQLITE_MOVED = (  # told or untold, or another recipient (as the PostgreSQL trigger's WHEN)
    "(OLD.delivered_at IS NULL) <> (NEW.delivered_at IS NULL)"
    " OR OLD.recipient_kind IS NOT NEW.recipient_kind"
    " OR OLD.recipient_ref IS NOT NEW.recipient_ref"
)
PG_TRIGGERS = """
CREATE FUNCTION obligations_inbox_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' AND OLD.delivered_at IS NOT NULL THEN
    INSERT INTO inbox_tallies (recipient_kind, recipient_ref, n) VALUES (OLD.recipient_kind,
      CASE WHEN OLD.recipient_kind = 'victim' THEN '' ELSE coalesce(OLD.recipient_ref, '') END,
      -1);
  END IF;
  IF TG_OP <> 'DELETE' AND NEW.delivered_at IS NOT NULL THEN
    INSERT INTO inbox_tallies (recipient_kind, recipient_ref, n) VALUES (NEW.recipient_kind,
      CASE WHEN NEW.recipient_kind = 'victim' THEN '' ELSE coalesce(NEW.recipient_ref, '') END,
      1);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER obligations_tally_insert AFTER INSERT ON obligations
  FOR EACH ROW WHEN (NEW.delivered_at IS NOT NULL) EXECUTE FUNCTION obligations_inbox_tally();
CREATE TRIGGER obligations_tally_delete AFTER DELETE ON obligations
  FOR EACH ROW WHEN (OLD.delivered_at IS NOT NULL) EXECUTE FUNCTION obligations_inbox_tally();
CREATE TRIGGER obligations_tally_update
  AFTER UPDATE OF delivered_at, recipient_kind, recipient_ref ON obligations
  FOR EACH ROW WHEN ((OLD.delivered_at IS NULL) <> (NEW.delivered_at IS NULL)
    OR OLD.recipient_kind IS DISTINCT FROM NEW.recipient_kind
    OR OLD.recipient_ref IS DISTINCT FROM NEW.recipient_ref)
  EXECUTE FUNCTION obligations_inbox_tally();
"""
_SQLITE_ROW = (
    "INSERT INTO inbox_tallies (recipient_kind, recipient_ref, n) "
    "SELECT {r}.recipient_kind, " + REF + ", {n} WHERE {r}.delivered_at IS NOT NULL;"
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER obligations_tally_insert AFTER INSERT ON obligations "
    "WHEN NEW.delivered_at IS NOT NULL BEGIN " + _SQLITE_ROW.format(r="NEW", n=1) + " END",
    "CREATE TRIGGER obligations_tally_delete AFTER DELETE ON obligations "
    "WHEN OLD.delivered_at IS NOT NULL BEGIN " + _SQLITE_ROW.format(r="OLD", n=-1) + " END",
    "CREATE TRIGGER obligations_tally_update "
    "AFTER UPDATE OF delivered_at, recipient_kind, recipient_ref ON obligations "
    "WHEN "
    + SQLITE_MOVED
    + " BEGIN "
    + _SQLITE_ROW.format(r="OLD", n=-1)
    + " "
    + _SQLITE_ROW.format(r="NEW", n=1)
    + " END",
)
# what is told today, one row per organisation
BACKFILL = (
    "INSERT INTO inbox_tallies (recipient_kind, recipient_ref, n) "
    "SELECT recipient_kind, {ref}, count(*) FROM obligations o WHERE delivered_at IS NOT NULL "
    "GROUP BY recipient_kind, {ref}"
)


def upgrade() -> None:
    op.create_table(
        "inbox_tallies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_kind", sa.String(length=16), nullable=False),
        sa.Column("recipient_ref", sa.String(length=64), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_tallies")),
    )
    with op.batch_alter_table("inbox_tallies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbox_tallies_recipient", ["recipient_kind", "recipient_ref"], unique=False
        )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("LOCK TABLE obligations IN SHARE MODE")  # no change between count and triggers
        op.execute(PG_TRIGGERS)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
    op.execute(BACKFILL.format(ref=REF.format(r="o")))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS obligations_tally_{name} ON obligations")
        op.execute("DROP FUNCTION IF EXISTS obligations_inbox_tally()")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS obligations_tally_{name}")
    with op.batch_alter_table("inbox_tallies", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_tallies_recipient")
    op.drop_table("inbox_tallies")
