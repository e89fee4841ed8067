"""The data version is taken at commit, and limits and idempotency keys follow the caller.

Revision ID: 0017
Revises: 0016

**Why.** Dashboard answers are kept under a data version (`dashboard_cache`, and in memory
per process). Until now it was the newest audit id, taken when a write inserts its audit
entry, not when it commits. Write A takes id 10, write B id 11, B commits first: a reader
then sees version 11 and B's figures without A's, and files its answer under 11. When A
commits, the newest id is still 11, so that answer, missing A, is served until the next
write.

**What.** `data_version` is a one-row counter. A deferred constraint trigger on
`audit_event` inserts (`WHEN` the action is not `console.%`: sign-ins move no figure) bumps
it at the writing transaction's COMMIT, once per transaction however many entries a batch
appends. The UPDATE takes the row's lock and holds it until the transaction's commit is
done, so the bumps happen one after the other in commit order: a transaction whose bump
follows another's waited for that one to be committed, and visible (a backend leaves the
set of running transactions before it releases its locks), so versions grow in the order
their writes become visible.

- A reader that reads version `V` therefore sees the writer of `V` committed, and with it
  every writer of a smaller version (each was visible before the next one could bump); it
  computes its answer afterwards, on a snapshot that sees at least all of them. An answer
  filed under `V` never misses data of version `V` or below: the stale answer above cannot
  be filed any more.
- An answer filed under `V` may hold a write committed after the version was read (version
  `V + 1`, between the reader's arrival and its computation). It is served only to requests
  that also read `V`, that is requests that arrived before `V + 1` was committed: they see
  figures newer than their arrival, never older. Any request arriving after that commit
  reads `V + 1` and never matches it.

Once per transaction: the trigger skips the UPDATE when the row was written by this very
transaction (`bumped_by` holds the 64-bit id of the transaction that wrote it, and `xmin` is
that transaction itself, not one of its subtransactions). The tests run each test in one
transaction never committed, the app's commits being savepoints: there the trigger is made
IMMEDIATE (`SET CONSTRAINTS`) and every audited write moves the version at once, each in
its own subtransaction.

**Least privilege.** The trigger's function runs as the owner (SECURITY DEFINER, fixed
search_path); the service role `esms_app` may only read `data_version`: it cannot set the
version back to one whose answers are kept, nor bump it without an audited write.

**Cost.** One indexed row read per request instead of a backward scan of `audit_event`;
per write transaction one UPDATE of one row at commit. The row lock is a serialisation
point held from the deferred trigger to the end of COMMIT (its WAL flush): writers queue
there for that long, which vendors' batches of thousands of rows do not notice
(deploy/SCALING.md).

**Never twice.** Each bump takes the next value of `data_version_seq` (under the row's lock,
so still in commit order) rather than adding one: a sequence does not go back when a
transaction rolls back, so no version is ever handed out twice, and an answer kept in a
process's memory can never be taken for another one's. Versions start at 2^40 plus the last
audit id handed out: the old rule's versions were audit ids, far below, so an answer that a
process of the previous release files during the release's rollout (it reads the newest
audit id until it stops, about ten seconds) can never be taken for one of the counter. The
kept answers are dropped all the same.

**Callers.** The rate limit and the idempotency keys are now keyed by who calls, not by the
bearer token's bytes: `token:<id>` for an API token, `oidc:<digest of issuer and subject>`
for an OpenID Connect identity, so that a client refreshing its access token keeps its
minute and its keys. The stored keys of API tokens are carried over (minute counters are
not: losing one forgives a minute). The columns keep their names (`rate_window.token_hash`
now holds the caller), so that the previous release's processes keep working while the
release rolls out: the schema only grows.

Downgrading drops the counter, its trigger and function, and the kept answers (computed
under the counter), and gives keys of API tokens back their token hash.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "esms_app"
# Above every audit id, the versions of the old rule (see "Never twice").
VERSIONS_FROM = 2**40
# The 64-bit id of the current transaction, as a bigint (xid8 has no cast to it).
CURRENT_XACT = "pg_current_xact_id()::text::bigint"


def upgrade() -> None:
    op.create_table(
        "data_version",
        sa.Column("id", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("bumped_by", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("id", name=op.f("ck_data_version_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_version")),
    )
    # Versions come from a sequence, called under the row's lock (so still in commit order):
    # a version is never handed out twice, even by a transaction that rolls back.
    op.execute(
        "CREATE SEQUENCE data_version_seq AS bigint START WITH "
        f"{VERSIONS_FROM + _audit_ids_so_far() + 1} OWNED BY data_version.version"
    )
    op.execute("INSERT INTO data_version (id, version) VALUES (true, nextval('data_version_seq'))")
    op.execute("DELETE FROM dashboard_cache")
    op.execute(
        f"""
        CREATE FUNCTION bump_data_version() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        BEGIN
            -- Once per transaction: skip when this transaction itself (not one of its
            -- subtransactions) wrote the row already.
            UPDATE public.data_version
               SET version = nextval('public.data_version_seq'), bumped_by = {CURRENT_XACT}
             WHERE bumped_by IS DISTINCT FROM {CURRENT_XACT}
                OR xmin::text <> ({CURRENT_XACT} % 4294967296)::text;
            RETURN NULL;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION bump_data_version() FROM PUBLIC")
    op.execute(
        "CREATE CONSTRAINT TRIGGER audit_event_bumps_data_version AFTER INSERT ON audit_event "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        "WHEN (NEW.action NOT LIKE 'console.%') EXECUTE FUNCTION bump_data_version()"
    )
    op.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON data_version FROM {ROLE}")
    op.execute(f"GRANT SELECT ON data_version TO {ROLE}")
    op.execute(f"REVOKE ALL ON SEQUENCE data_version_seq FROM {ROLE}")

    op.execute("DELETE FROM rate_window")
    op.execute(
        "UPDATE idempotency_key k SET principal = 'token:' || t.id "
        "FROM access_token t WHERE t.token_hash = k.principal"
    )


def _audit_ids_so_far() -> int:
    """The last audit id handed out (committed or not): every version of the old rule."""
    return (
        op.get_bind()
        .exec_driver_sql(
            "SELECT coalesce(pg_sequence_last_value("
            "pg_get_serial_sequence('audit_event', 'id')), 0)"
        )
        .scalar_one()
    )


def downgrade() -> None:
    op.execute(
        "UPDATE idempotency_key k SET principal = t.token_hash "
        "FROM access_token t WHERE k.principal = 'token:' || t.id"
    )
    op.execute("DELETE FROM rate_window")
    op.execute("DROP TRIGGER audit_event_bumps_data_version ON audit_event")
    op.execute("DROP FUNCTION bump_data_version()")
    op.drop_table("data_version")
    op.execute("DELETE FROM dashboard_cache")
