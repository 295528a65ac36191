"""A new database is created from the models and stamped at the head revision (fast first start); this
must give exactly the schema the migrations give, on SQLite and PostgreSQL."""

import subprocess
import sys

import pytest

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

import ess_bot.storage.all_models  # noqa: F401
from ess_bot.storage.db import HEAD_REVISION, Database, alembic_config
from ess_bot.storage.models import Base, include_object


def test_head_revision_constant_is_the_newest_migration():
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def describe(conn) -> dict:
    """Everything about the schema that matters: tables, columns, keys, indexes, constraints."""
    insp = inspect(conn)
    out = {}
    for table in sorted(insp.get_table_names()):
        out[table] = {
            "columns": [(c["name"], str(c["type"]).split("(")[0].upper(), c["nullable"])
                        for c in insp.get_columns(table)],
            "pk": sorted(insp.get_pk_constraint(table)["constrained_columns"]),
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                          for f in insp.get_foreign_keys(table)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in insp.get_indexes(table)),
            "uniques": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
        }
    if conn.dialect.name == "sqlite":  # the inspector skips expression indexes: read them from the catalogue
        rows = conn.exec_driver_sql("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' "
                                    "AND sql IS NOT NULL ORDER BY name").all()
        out["sqlite indexes"] = {
            name: (table, [r[2] for r in conn.exec_driver_sql(f"PRAGMA index_info('{name}')").all()])
            for name, table in rows}
    return out


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
async def test_created_schema_equals_the_migrated_schema(db_url, tmp_path, request):
    created = Database(db_url)
    assert await created.upgrade() == "created"
    assert await created.upgrade() == "current"
    if created.is_sqlite:
        other_url = f"sqlite+aiosqlite:///{tmp_path}/migrated.db"
    else:
        other_url = request.getfixturevalue("postgres").create_database()
    migrated = Database(other_url)
    async with migrated.engine.begin() as conn:  # the migrations, one by one, as an old database gets them
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))
    async with created.engine.connect() as a, migrated.engine.connect() as b:
        schema_a = await a.run_sync(describe)
        schema_b = await b.run_sync(describe)
        version = (await a.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        # and the models say nothing the migrations do not (compare_metadata lists differences)
        diffs = await b.run_sync(lambda c: compare_metadata(
            MigrationContext.configure(c, opts={"include_object": include_object(c.dialect.name)}), Base.metadata))
    assert schema_a == schema_b
    if created.is_sqlite:  # the report's month index (expression first), on SQLite only
        assert schema_a["sqlite indexes"]["ix_accompaniments_month_cube"] == (
            "accompaniments", [None, "partner", "phase", "modality", "cancelled", "date", "duration_minutes"])
    else:
        assert "ix_accompaniments_month_cube" not in [i[0] for i in schema_a["accompaniments"]["indexes"]]
    assert version == [HEAD_REVISION]
    assert diffs == []
    await created.dispose()
    await migrated.dispose()


async def test_an_older_database_is_migrated(db_url):
    db = Database(db_url)
    await db.upgrade()
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0003"))
    assert await db.upgrade() == "migrated"
    assert await db.upgrade() == "current"
    await db.dispose()


def test_a_database_at_head_starts_without_loading_alembic(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    code = ("import asyncio, sys\nfrom ess_bot.storage.db import Database\n"
            "async def main():\n    db = Database(sys.argv[1])\n    r = await db.upgrade()\n    await db.dispose()\n"
            "    return r\n"
            "print(asyncio.run(main()), 'alembic' in sys.modules)\n")
    runs = [subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, check=True).stdout.split()
            for _ in range(2)]
    assert runs == [["created", "False"], ["current", "False"]]
