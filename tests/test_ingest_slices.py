"""A period delivered per province (`<kind>_<period>_p<province>.<ext>`): each file its own part and
load, and what is current decided per kind, period and province (flows/ingest/slices.py)."""

from __future__ import annotations

import json

from flows import ingest, metrics, parts
from tests.test_ingest import load, write

HEADER = "region_code,segment,status,participants\n"


def staged(con) -> list[tuple]:
    metrics.build(con, layers=("staging",))
    return con.execute(
        "select strftime(month, '%Y-%m'), region_code, participants, file_name from staging.region_counts order by all"
    ).fetchall()


def publish(con) -> dict[str, str]:
    metrics.build(con)
    metrics.publish(con)
    return dict(con.execute("select file_name, status from ops.load_log").fetchall())


def test_province_files_of_one_month_are_each_a_load_and_all_current(con, tmp_path):
    west = write(tmp_path, "region_counts_2022-08_p32.csv", HEADER + "3201,BP,ACTIVE,7\n")
    central = write(tmp_path, "region_counts_2022-08_p33.csv", HEADER + "3325,BP,ACTIVE,10\n3326,BP,ACTIVE,20\n")
    results = load(con, west, central)
    assert [(r.status, r.rows_loaded) for r in results] == [("staged", 1), ("staged", 2)]
    assert con.execute("select file_name, province_code, period from ops.load_log order by load_id").fetchall() == [
        ("region_counts_2022-08_p32.csv", "32", "2022-08"),
        ("region_counts_2022-08_p33.csv", "33", "2022-08"),
    ]
    assert staged(con) == [
        ("2022-08", "3201", 7, west.name),
        ("2022-08", "3325", 10, central.name),
        ("2022-08", "3326", 20, central.name),
    ]
    assert load(con, central)[0].status == "skipped"  # the same bytes again: loaded once


def test_a_province_correction_replaces_that_province_of_a_whole_country_file_only(con, tmp_path):
    national = write(
        tmp_path,
        "region_counts_2022-08.csv",
        HEADER + "3171,BP,ACTIVE,5\n3201,BP,ACTIVE,7\n3325,BP,ACTIVE,10\n3326,BP,ACTIVE,20\n",
    )
    september = write(tmp_path, "region_counts_2022-09.csv", HEADER + "3325,BP,ACTIVE,11\n")
    load(con, national, september)
    assert publish(con) == {national.name: "published", september.name: "published"}
    # Central Java corrected: 3326 is gone from it, 3325 changed; Jakarta and West Java stay as delivered
    fix = write(tmp_path, "region_counts_2022-08_p33.csv", HEADER + "3325,BP,ACTIVE,12\n")
    load(con, fix)
    assert staged(con) == [
        ("2022-08", "3171", 5, national.name),
        ("2022-08", "3201", 7, national.name),
        ("2022-08", "3325", 12, fix.name),
        ("2022-09", "3325", 11, september.name),
    ]
    # the whole-country file still supplies two provinces: published, its part kept
    assert publish(con) == {national.name: "published", september.name: "published", fix.name: "published"}
    assert {row[0] for row in con.execute("select file_name from raw.region_counts").fetchall()} == {
        national.name,
        september.name,
        fix.name,
    }
    assert (
        con.execute(
            "select sum(participants) from mart.coverage where level = 'national' and month = '2022-08-01'"
        ).fetchone()[0]
        == 5 + 7 + 12
    )


def test_a_whole_country_file_delivered_later_replaces_every_province(con, tmp_path):
    slices = [
        write(tmp_path, f"region_counts_2022-08_p{p}.csv", HEADER + f"{code},BP,ACTIVE,{n}\n")
        for p, code, n in (("31", "3171", 5), ("33", "3325", 10))
    ]
    load(con, *slices)
    publish(con)
    whole = write(tmp_path / "later", "region_counts_2022-08.csv", HEADER + "3171,BP,ACTIVE,6\n3325,BP,ACTIVE,9\n")
    load(con, whole)
    assert staged(con) == [("2022-08", "3171", 6, whole.name), ("2022-08", "3325", 9, whole.name)]
    statuses = publish(con)
    assert statuses == {slices[0].name: "superseded", slices[1].name: "superseded", whole.name: "published"}
    # the superseded slices' parts are gone from the parts folder; the whole file's is there
    files = sorted(path.name for path in parts.root_of(con).rglob("*.parquet"))
    assert files == [f"{ingest.file_sha256(whole)}.parquet"]


def test_a_province_file_with_a_region_of_another_province_is_refused_whole(con, tmp_path):
    before = con.execute("select count(*) from ops.load_log").fetchone()[0]
    path = write(
        tmp_path, "region_counts_2022-08_p33.csv", HEADER + "3325,BP,ACTIVE,10\n\n3171,BP,ACTIVE,5\n3326,BP,ACTIVE,20\n"
    )
    [result] = load(con, path)
    assert result.status == "rejected"
    # line 4 as the file has it (the blank line 3 counts), the column as the header names it
    assert result.message == (
        "region_counts_2022-08_p33.csv, line 4, column 'region_code': region '3171' is in "
        "province '31', not in province '33' of the file name (_p33); a province file holds "
        "that province's regions only"
    )
    assert con.execute("select count(*) from ops.load_log").fetchone()[0] == before + 1
    assert con.execute("select count(*) from raw.region_counts").fetchone()[0] == 0
    assert not list(parts.root_of(con).rglob("*.parquet"))


def test_a_province_code_that_is_no_province_is_refused(con, tmp_path):
    [result] = load(con, write(tmp_path, "region_counts_2022-08_p99.csv", HEADER + "3325,BP,ACTIVE,10\n"))
    assert result.status == "rejected" and "province '99' in the name (_p99) is not a province code" in result.message


def test_a_filter_on_a_staging_view_still_prunes_other_parts_in_the_parquet_scan(con, tmp_path):
    """Every staging view reads its rows through one definition (the table macro staging.current_rows);
    DuckDB inlines it, so a month filter still rules out other months' parts from their Parquet statistics,
    for whole loads and for a load partly replaced by a province file alike."""
    august = write(tmp_path, "region_counts_2022-08.csv", HEADER + "3201,BP,ACTIVE,7\n3325,BP,ACTIVE,10\n")
    september = write(tmp_path, "region_counts_2022-09.csv", HEADER + "3201,BP,ACTIVE,8\n3325,BP,ACTIVE,11\n")
    fix = write(tmp_path, "region_counts_2022-09_p33.csv", HEADER + "3325,BP,ACTIVE,12\n")
    load(con, august, september, fix)
    assert staged(con)[-2:] == [("2022-09", "3201", 8, september.name), ("2022-09", "3325", 12, fix.name)]
    query = "select sum(participants) from staging.region_counts where month = date '2022-08-01'"
    operators: list[str] = []

    def walk(node: dict) -> None:
        operators.append(node["name"])
        for child in node.get("children", []):
            walk(child)

    for node in json.loads(con.execute(f"explain (format json) {query}").fetchall()[0][1]):
        walk(node)
    # three parts, each under the whole-load and the province-slice branch: September's two are ruled out
    # before anything is read (how many scans DuckDB keeps for August depends on its plan for tiny tables)
    assert operators.count("EMPTY_RESULT") >= 2
    assert 1 <= operators.count("READ_PARQUET") <= 2
    assert con.execute(query).fetchone()[0] == 17
