"""build.region_month_counts reads the participants loads' profiles (ops.participant_profile), not their rows:
the same rows as counting the current rows would give, for whole-country files, province corrections and
loads that came without a profile (profiled by the build, flows/participant_profile.py)."""

from __future__ import annotations

from flows import metrics, parts
from tests import rows
from tests.test_ingest import load, write

HEADER = "card_no,nik,region_code,segment,status,employer_id,wage\n"

# what the model gave when it counted staging.participants: the rows its profiles must reproduce
COUNTED_ROWS = """
    select month, region_code, segment, status, count(*) as participants
    from staging.participants
    group by all
"""
FROM_PROFILES = """
    select month, region_code, segment, status, participants
    from build.region_month_counts
    where (month, region_code) in (select distinct month, region_code from staging.participants)
"""


def people(rows_: list[tuple[str, str, str]], first: int) -> str:
    """CSV lines for (region_code, segment, status) rows, card numbers from `first`."""
    lines = []
    for index, (region, segment, status) in enumerate(rows_, start=first):
        employer, wage = ("00012345", "3500000") if segment == "PPU_BU" else ("", "")
        lines.append(f"{index:013d},{region}01450790{index % 10000:04d},{region},{segment},{status},{employer},{wage}")
    return "\n".join(lines) + "\n"


def differences(con, left: str, right: str) -> int:
    return con.execute(
        f"select count(*) from (({left}) except all ({right})) union all "
        f"select count(*) from (({right}) except all ({left}))"
    ).fetchall()


def test_region_month_counts_from_profiles_equal_the_counts_of_the_current_rows(con, tmp_path):
    national = write(
        tmp_path,
        "participants_2022-08.csv",
        HEADER
        + people(
            [("3171", "PBPU", "ACTIVE")] * 3
            + [("3325", "PPU_BU", "ACTIVE")] * 2
            + [("3325", "PBPU", "INACTIVE")]
            + [("3326", "PBI_APBN", "ACTIVE")] * 4,
            first=1,
        ),
    )
    # Central Java corrected: 3326 gone from it, 3325 changed; Jakarta stays as delivered
    fix = write(tmp_path, "participants_2022-08_p33.csv", HEADER + people([("3325", "PBPU", "ACTIVE")] * 5, first=100))
    results = load(con, national, fix)
    assert [result.status for result in results] == ["staged", "staged"]
    profiled = con.execute("select count(distinct load_id) from ops.participant_profile").fetchone()[0]
    assert profiled == 2  # ingest stored each load's profile with it
    # a load registered without a profile (as by an earlier release): the build profiles it first
    rows.participants(con, "2022-09", [("0000000000001", "3325", "PBPU", "ACTIVE", None, None)])
    rows.region_counts(con, "2022-09", {"3326": (4, 1)})
    rows.build(con, layers=("staging", "intermediate"))

    got = con.execute(
        "select strftime(month, '%Y-%m'), region_code, segment, status, participants "
        "from build.region_month_counts order by all"
    ).fetchall()
    assert got == [
        ("2022-08", "3171", "PBPU", "ACTIVE", 3),
        ("2022-08", "3325", "PBPU", "ACTIVE", 5),
        ("2022-09", "3325", "PBPU", "ACTIVE", 1),
        ("2022-09", "3326", "PBPU", "ACTIVE", 4),
        ("2022-09", "3326", "PBPU", "INACTIVE", 1),
    ]
    assert differences(con, COUNTED_ROWS, FROM_PROFILES) == [(0,), (0,)]

    # no participant row is read: with the parts gone, the model gives the same rows
    before = con.execute("select * from build.region_month_counts order by all").fetchall()
    for path in (parts.root_of(con) / "participants").rglob("*.parquet"):
        path.unlink()
    model = next(model for model in metrics.models() if model.name == "region_month_counts")
    metrics.run_model(con, model)
    assert con.execute("select * from build.region_month_counts order by all").fetchall() == before
