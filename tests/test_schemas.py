"""schemas/ is generated from the code: these fail when the committed files drift (fix: `make schemas`)."""
from __future__ import annotations

import json

import pytest

from extractor import schemas
from extractor.export import SCHEMA_FIELDS, ExportMeasurement


@pytest.mark.parametrize("name", [schemas.DATABASE_SQL, schemas.MEASUREMENT_JSON])
def test_schema_file_in_sync_with_code(name: str) -> None:
    committed = (schemas.SCHEMAS / name).read_text(encoding="utf-8")
    assert committed == schemas.generated()[name], f"schemas/{name} is stale: run `make schemas`"


def test_generation_is_deterministic() -> None:
    assert schemas.generated() == schemas.generated()


def test_database_sql_builds_the_same_database(tmp_path) -> None:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "from_sql.db")
    conn.executescript(schemas.database_sql())
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"articles", "sections", "trials", "measurements", "raw_records", "articles_fts", "evidence"} <= names


def test_measurement_schema_has_schema_md_fields_and_pmid() -> None:
    schema = json.loads(schemas.measurement_schema())
    assert {"pmid", *SCHEMA_FIELDS} <= set(schema["properties"])
    assert {"pmid", "kind", "endpoint", "value", "evidence"} <= set(schema["required"])
    assert schema["additionalProperties"] is False
    assert schema["properties"]["kind"]["enum"] == ["median", "hazard_ratio", "odds_ratio", "risk_ratio", "rate"]
    assert list(ExportMeasurement.model_fields)[: len(SCHEMA_FIELDS) + 1] == ["pmid", *SCHEMA_FIELDS]
