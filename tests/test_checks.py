"""The data-quality suites: GX's JSON format, the GX/duckdb-engine regression, and for each
suite a batch that passes it and batches that fail it, asserting which expectations fail.

The batches (tests/fixtures/checks/batches.py) are spoiled with plain SQL: staging suites
through the raw rows of the staged August file, mart suites through the built table, as a
mistake in a SQL model would leave it.
"""

from __future__ import annotations

import json

import pytest

from flows import checks, database, gx_patches, metrics
from tests.fixtures.checks import batches
from tests.fixtures.checks.batches import prepare

SUITES = [path.stem for path in checks.suite_files()]
STAGING_MODELS = {"region_counts", "population", "participants", "employers", "workforce"}
CURRENT = "period = '2022-08'"
# the tables the employer marts are built into (`build.<name>` is a view over each: flows/metrics.py)
COMPLIANCE = metrics.built_table("employer_compliance")
WORKLIST = metrics.built_table("enforcement_worklist")


def set_participant(assignment: str, number: int) -> str:
    """Change one August participant (by card number)."""
    return f"update raw.participants set {assignment} where {CURRENT} and card_no = '{batches.card(number)}'"


def add_participant(number: int) -> str:
    """One more August participant in Kota Pekalongan, in the August file."""
    values = ", ".join(_sql_literal(value) for value in batches.participant("2022-08", number))
    return (
        f"insert into raw.participants select load_id, file_name, period, {values} from raw.participants "
        f"where {CURRENT} limit 1"
    )


def _sql_literal(value) -> str:
    if value is None:
        return "null"
    return f"unhex('{value.hex()}')" if isinstance(value, bytes) else repr(value)


def validate(settings, *suites: str) -> checks.CheckReport:
    paths = [checks.EXPECTATIONS_DIR / f"{suite}.json" for suite in suites]
    return checks.run_suites(settings, paths, "test-run", build_docs=False)


def failures(report: checks.CheckReport) -> dict[str, str]:
    return {result.expectation: result.severity for result in report.results if not result.success}


def test_every_suite_is_gx_json_that_round_trips():
    import great_expectations as gx

    for path in checks.suite_files():
        text = path.read_text(encoding="utf-8")
        definition = json.loads(text)
        assert definition["name"] == path.stem
        suite = gx.ExpectationSuite(**checks.read_suite(path))
        saved = suite.to_json_dict()
        saved["id"] = None
        for expectation in saved["expectations"]:
            expectation.pop("id", None)
        assert saved == definition, f"{path.name} is not in GX's own JSON layout"

        descriptions = [e["meta"]["description"] for e in definition["expectations"]]
        assert all(descriptions), f"{path.name}: every expectation needs meta.description"
        assert len(set(descriptions)) == len(descriptions), f"{path.name}: descriptions must be unique"
        assert {e["severity"] for e in definition["expectations"]} <= {"critical", "warning"}
        for expectation in definition["expectations"]:
            if expectation["type"] == "unexpected_rows_expectation":
                query = expectation["kwargs"]["unexpected_rows_query"]
                # Scoped to the batch: its rows, or the profile of its staged participants loads
                # (flows/participant_profile.py), which the rules read instead of the rows.
                assert "{batch}" in query or ("ops.participant_" in query and "status = 'staged'" in query), query
                assert expectation["description"] == expectation["meta"]["description"]


def test_write_suite_round_trips_a_suite_edited_with_gx(tmp_path):
    """README's recipe: load a suite, add an expectation with GX's API, save it back."""
    import great_expectations as gx

    path = checks.EXPECTATIONS_DIR / "staging.population.json"
    context = gx.get_context(mode="ephemeral")
    suite = context.suites.add(gx.ExpectationSuite(**checks.read_suite(path)))
    suite.add_expectation(
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="population",
            max_value=50_000_000,
            severity="warning",
            meta={"description": "no kab/kota has more than 50 million people"},
        )
    )
    saved = checks.write_suite(suite, tmp_path)
    original = json.loads(path.read_text(encoding="utf-8"))
    written = json.loads(saved.read_text(encoding="utf-8"))
    assert written["expectations"][:-1] == original["expectations"]
    assert written["expectations"][-1]["kwargs"] == {"column": "population", "max_value": 50_000_000}
    assert "id" not in written["expectations"][-1]


def test_one_suite_per_staging_table_and_per_mart():

    # staging.current_loads says which load supplies each kind x period x province and the macro
    # staging.current_rows reads those rows for a view (no extract rows of their own to check; the rule is
    # tested in tests/test_ingest_slices.py); every other staging view has a suite
    expected = {
        f"staging.{model.name}"
        for model in metrics.models()
        if model.layer == "staging" and model.name not in ("current_loads", "current_rows")
    }
    expected |= {f"build.{name}" for name in metrics.mart_names()}
    assert set(SUITES) == expected
    assert {name.split(".")[1] for name in SUITES if name.startswith("staging.")} == STAGING_MODELS


def test_good_batch_passes_every_suite_and_every_observed_value_is_filled(settings):
    """The regression test for GX issues #10738/#11579: with duckdb-engine every metric came
    back empty (observed_value None) and every expectation failed."""
    prepare(settings)
    report = validate(settings, *SUITES)
    assert report.skipped == []
    assert failures(report) == {}
    for suite in SUITES:
        expectations = json.loads((checks.EXPECTATIONS_DIR / f"{suite}.json").read_text())["expectations"]
        assert len([r for r in report.results if r.suite == suite]) == len(expectations)
    empty = [(r.suite, r.expectation) for r in report.results if not r.observed or r.observed.startswith("error")]
    assert empty == []
    # Each batch really had rows to check: a staging table's row count is what GX counted.
    counted = {r.suite: r.observed for r in report.results if r.expectation == "participant counts are never negative"}
    assert counted["staging.region_counts"].endswith("of 8 rows")


def test_staging_suites_see_only_the_staged_files(settings):
    """Once August is published too, nothing is staged: the staging suites do not run at all (suites over
    empty batches would all pass, and that would be reported as a clean batch), and published rows are
    never checked again."""
    prepare(
        settings,
        spoil=[
            "update ops.load_log set status = 'published'",
            # would fail if published rows were checked again
            f"update raw.region_counts set participants = -1 where {CURRENT}",
        ],
    )
    report = validate(settings, "staging.region_counts")
    assert report.nothing_staged and report.results == [] and report.passed


SCENARIOS = {
    "region counts with bad values": (
        "staging.region_counts",
        dict(
            spoil=[
                f"update raw.region_counts set segment = 'PBI' where {CURRENT} and region_code = '3325' "
                "and segment = 'PBI_APBN' and status = 'INACTIVE'",
                f"update raw.region_counts set status = 'AKTIF' where {CURRENT} and region_code = '3326' "
                "and segment = 'PBI_APBN' and status = 'INACTIVE'",
                # 3325 falls from 800 to 714 participants: also more than 10% month on month
                f"update raw.region_counts set participants = -1 where {CURRENT} and region_code = '3325' "
                "and segment = 'PBPU' and status = 'INACTIVE'",
                "insert into raw.region_counts select * from raw.region_counts "
                f"where {CURRENT} and region_code = '3326' and segment = 'PBPU' and status = 'ACTIVE'",
                "insert into raw.region_counts select load_id, file_name, period, month, '9999', segment, status, 5 "
                f"from raw.region_counts where {CURRENT} and region_code = '3325' and segment = 'PBPU' "
                "and status = 'ACTIVE'",
            ]
        ),
        {
            "segment is one of the six JKN segments": "critical",
            "status is ACTIVE or INACTIVE": "critical",
            "participant counts are never negative": "critical",
            "one row per month x region x segment x status": "critical",
            "region_code is a kab/kota code listed in seeds/regions.csv": "critical",
            "a region's participants change by at most 10% from the month before": "warning",
        },
    ),
    "a region stops reporting": (
        "staging.region_counts",
        dict(spoil=[f"delete from raw.region_counts where {CURRENT} and region_code = '3326'"]),
        # a warning since issue 14: the other regions publish, the missing one is shown as not reported
        {
            "every region that reported last month (region counts or participant extract) reports in each month "
            "of the batch": "warning"
        },
    ),
    "population with bad values": (
        "staging.population",
        dict(
            spoil=[
                "update raw.population set population = 0 where period = '2022-S1' and region_code = '3375'",
                "insert into raw.population select * from raw.population where period = "
                "'2022-S1' and region_code = '3325'",
                "delete from raw.population where period = '2022-S1' and region_code = '3326'",
                "insert into raw.population select load_id, file_name, period, as_of, '9999', 100 "
                "from raw.population where period = '2022-S1' and region_code = '3325' limit 1",
                "insert into raw.population select load_id, file_name, period, date '2022-12-31', '3327', 100 "
                "from raw.population where period = '2022-S1' and region_code = '3325' limit 1",
            ]
        ),
        {
            "population is greater than zero": "critical",
            "one population figure per semester x region": "critical",
            "region_code is a kab/kota code listed in seeds/regions.csv": "critical",
            "the semester matches the as-of date (S1 is 30 June, S2 is 31 December)": "critical",
            "every region in the previous semester's population file is in this one": "warning",
            "a region's population changes by at most 5% from the previous semester": "warning",
        },
    ),
    "participants with bad values": (
        "staging.participants",
        dict(
            spoil=[
                # the row-level rules are ingest's (test_row_rules_are_enforced_at_ingest); these are the batch's
                set_participant(f"card_no = '{batches.card(6)}'", 5),
                set_participant(f"person_key = unhex('{batches.person_key(8)}')", 7),
                # five more people: 3375 grows from 20 to 25 (+25%)
                *[add_participant(number) for number in range(101, 106)],
                # Kab. Pekalongan's region counts for August are missing: it reported in July
                f"delete from raw.region_counts where {CURRENT} and region_code = '3326'",
            ]
        ),
        {
            "a card number appears once per month": "critical",
            "a person holds one card per month (two cards: a duplicate enrolment)": "warning",
            "every region that reported last month (region counts or participant extract) reports in each month "
            "of the batch": "warning",
            "a region's participants change by at most 10% from the month before": "warning",
        },
    ),
    "employers with bad values": (
        "staging.employers",
        dict(
            spoil=[
                f"insert into raw.employers select * from raw.employers where {CURRENT} and employer_id = 'E001'",
                f"update raw.employers set business_id = '912', months_in_arrears = -1, contribution_paid = 2000000 "
                f"where {CURRENT} and employer_id = 'E002'",
                "insert into raw.employers select load_id, file_name, period, month, 'E003', '9120000000009', "
                "'PT Tiga', '9999', -1, -5, 5000000, 0, 0 "
                f"from raw.employers where {CURRENT} and employer_id = 'E001' limit 1",
            ]
        ),
        {
            "an employer registration number (NPP) appears once per month": "critical",
            "business ids (NIB) are 13 digits when given": "critical",
            "registered workers are never negative": "critical",
            "reported wages are never negative": "critical",
            "months in arrears are never negative": "critical",
            "contribution paid is never above contribution due by more than 1% + Rp 1,000 (rounding)": "critical",
            "contribution due is at most 5% of the wage cap (Rp 12,000,000) for each registered worker": "warning",
            "region_code is a kab/kota code listed in seeds/regions.csv": "critical",
        },
    ),
    "workforce with bad values": (
        "staging.workforce",
        dict(
            spoil=[
                f"update raw.workforce set business_id = '91200', workers = -4 where {CURRENT} and name = 'CV TIGA'",
                f"update raw.workforce set region_code = '9999' where {CURRENT} and name = 'PT SATU'",
            ]
        ),
        {
            "business ids (NIB) are 13 digits": "critical",
            "worker counts are never negative": "critical",
            "region_code is a kab/kota code listed in seeds/regions.csv": "critical",
        },
    ),
    "coverage above 110% and a region without population": (
        "build.coverage",
        dict(
            spoil=[
                "update raw.population set population = 15 where period = '2022-S1' and region_code = '3375'",
                "delete from raw.population where region_code = '3326'",
            ],
            rebuild=True,
        ),
        {
            "coverage is at most 110% (above that the population or the counts are wrong)": "critical",
            "coverage is at most 100% in the months of this batch (a lagging "
            "population figure can explain it)": "warning",
            "every region in the months of this batch has a population figure (else "
            "its coverage is unknown)": "warning",
        },
    ),
    "coverage rows that do not add up": (
        "build.coverage",
        dict(
            tamper=[
                "update build.coverage set participants = participants + 1 "
                "where level = 'region' and code = '3325' and month = '2022-08-01'",
                "insert into build.coverage select * from build.coverage where level = "
                "'national' and month = '2022-07-01'",
                "update build.coverage set level = 'kabupaten' where code = '3375'",
            ]
        ),
        {
            "coverage_pct and active_rate_pct are participants / population and active / participants": "critical",
            "active plus inactive participants equal the registered participants of each region": "critical",
            "branch, province and national figures are the sums of their regions (population only when every "
            "region has one)": "critical",
            "one row per month x level x code": "critical",
            "level is region, branch, province or national": "critical",
        },
    ),
    "coverage with a changed shape": (
        "build.coverage",
        dict(
            tamper=[
                "alter table build.coverage add column note varchar",
                "alter table build.coverage alter participants type double",
            ]
        ),
        {
            "the relation has exactly these columns: "
            + ", ".join(
                [
                    "month",
                    "level",
                    "code",
                    "name",
                    "population",
                    "population_period",
                    "participants",
                    "active_participants",
                    "coverage_pct",
                    "active_rate_pct",
                    "is_uhc",
                    "uhc_rule",
                    "uhc_min_coverage_pct",
                    "uhc_min_active_rate_pct",
                    "regions_not_reported",
                    "is_partial",
                ]
            ): "critical",
            "columns have their DuckDB types (month DATE, level VARCHAR, code VARCHAR, population "
            "BIGINT/HUGEINT/INTEGER, participants BIGINT/HUGEINT/INTEGER, active_participants "
            "BIGINT/HUGEINT/INTEGER, coverage_pct DOUBLE, active_rate_pct DOUBLE, is_uhc BOOLEAN)": "critical",
        },
    ),
    "a region shown as not reported while its figures are this month's": (
        "build.region_reporting",
        dict(
            tamper=[
                "update build.region_reporting set is_reported = false where code = '3325' and month = '2022-08-01'",
                "insert into build.region_reporting select * from build.region_reporting "
                "where code = '3326' and month = '2022-07-01'",
            ]
        ),
        {
            "one row per month x region": "critical",
            "a reported region's figures are of its month; a region not reported carries an earlier month's "
            "figures and the months since": "critical",
            "a region not reported in a month has no coverage figures of that month (its last figures are never "
            "passed off as this month's)": "critical",
            "the national figures count every region not reported as missing (marked partial)": "critical",
        },
    ),
    "segments that do not add up": (
        "build.coverage_by_segment",
        dict(
            tamper=[
                "update build.coverage_by_segment set participants = participants + 5 "
                "where level = 'region' and code = '3325' and segment = 'PBPU' and month = '2022-08-01'",
                "update build.coverage_by_segment set active_participants = participants + 1 "
                "where level = 'national' and segment = 'PBI_APBN' and month = '2022-07-01'",
                "update build.coverage_by_segment set segment = 'PBI' "
                "where level = 'province' and segment = 'PBPU' and month = '2022-07-01'",
                "update build.coverage_by_segment set share_pct = 120 "
                "where level = 'branch' and segment = 'PBPU' and month = '2022-08-01'",
            ]
        ),
        {
            "segments sum to the scope's participants and active participants in build.coverage": "critical",
            "a segment's active participants are between 0 and its participants": "critical",
            "segment is one of the six JKN segments": "critical",
            "a segment's share is between 0 and 100%": "critical",
        },
    ),
    "a trajectory that contradicts coverage": (
        "build.trajectory",
        dict(
            tamper=[
                "update build.trajectory set actual_pct = actual_pct + 1 where level = 'region' and code = '3325'",
                "update build.trajectory set status = 'ACHIEVED' where level = 'region' and code = '3326'",
                "update build.trajectory set status = 'LATE' where level = 'region' and code = '3375'",
                "update build.trajectory set people_needed = -1 where level = 'national'",
            ]
        ),
        {
            "actual coverage is build.coverage's coverage, and the gap is expected minus actual": "critical",
            "status is ACHIEVED exactly when actual coverage has reached the target": "critical",
            "status is ON_TRACK, BEHIND, AT_RISK, CRITICAL or ACHIEVED": "critical",
            "people needed is never negative": "critical",
        },
    ),
    "employer compliance that contradicts itself": (
        "build.employer_compliance",
        dict(
            tamper=[
                f"update {COMPLIANCE} set unregistered_workers = 0 where business_id = '{batches.NIB['satu']}'",
                f"update {COMPLIANCE} set employer_id = 'E009' where is_unregistered_employer",
                f"update {COMPLIANCE} set contribution_paid = contribution_due + 100000 where employer_id = 'E002'",
                f"update {COMPLIANCE} set months_in_arrears = -2 where employer_id = 'E002'",
                f"insert into {COMPLIANCE} select * from {COMPLIANCE} "
                "where employer_id = 'E001' and month = '2022-07-01'",
            ]
        ),
        {
            "unregistered workers are the reported workers the insurer has not registered": "critical",
            "an unregistered employer has no registration number and no registered workers": "critical",
            "contribution paid is never above contribution due by more than 1% + Rp 1,000 (rounding)": "critical",
            "months in arrears are never negative": "critical",
            "one row per month x company": "critical",
        },
    ),
    "regional compliance that does not add up": (
        "build.compliance_by_region",
        dict(
            tamper=[
                "update build.compliance_by_region set workers_registered = workers_registered + 1 "
                "where level = 'national' and month = '2022-07-01'",
                "update build.compliance_by_region set employers_not_registered = employers_not_registered + 1 "
                "where level = 'region' and code = '3326' and month = '2022-08-01'",
                "update build.compliance_by_region set worker_registration_pct = 101 "
                "where level = 'region' and code = '3325'",
            ]
        ),
        {
            "branch, province and national figures are the sums of their regions": "critical",
            "registered plus unregistered employers of a region are its companies in "
            "build.employer_compliance": "critical",
            "worker registration is between 0 and 100%": "critical",
        },
    ),
    "a worklist that misses employers": (
        "build.enforcement_worklist",
        dict(
            tamper=[
                f"delete from {WORKLIST} where employer_id = 'E002' and month = '2022-08-01'",
                f"update {WORKLIST} set priority = 1 where region_code = '3325'",
                f"update {WORKLIST} set fine_per_month_idr = 1000 where month = '2022-07-01'",
                f"update {WORKLIST} set next_sanction_step = 'ARREST', reasons = '' where employer_id = 'E002'",
            ]
        ),
        {
            "every non-compliant company in build.employer_compliance is on the worklist, and only those": "critical",
            "priorities are distinct within a month and region": "critical",
            "a fine is proposed only from the third month of non-compliance": "critical",
            "the next sanction step is one of PP 86/2013's steps": "critical",
            "every listed company has a reason": "critical",
        },
    ),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_spoiled_batch_fails_exactly_the_expectations_it_breaks(settings, scenario):
    suite, changes, expected = SCENARIOS[scenario]
    prepare(settings, **changes)
    report = validate(settings, suite)
    assert failures(report) == expected
    for result in report.results:
        if not result.success:
            assert result.observed and not result.observed.startswith("error"), result


def test_every_suite_has_a_failing_scenario():
    assert {suite for suite, _, _ in SCENARIOS.values()} == set(SUITES)


def test_failures_say_what_was_observed_without_personal_data(settings):
    prepare(
        settings,
        spoil=[
            set_participant(f"card_no = '{batches.card(6)}'", 5),
            set_participant(f"person_key = unhex('{batches.person_key(8)}')", 7),
            f"update raw.region_counts set participants = -7 where {CURRENT} and "
            f"region_code = '3325' and segment = 'PBPU'",
        ],
    )
    report = validate(settings, "staging.participants", "staging.region_counts")
    observed = {(r.suite, r.expectation): r.observed for r in report.results if not r.success}
    assert observed[("staging.participants", "a card number appears once per month")] == (
        "1 row: month=2022-08 repeated_card_numbers=1"
    )
    assert (
        observed[("staging.participants", "a person holds one card per month (two cards: a duplicate enrolment)")]
        == "1 row: month=2022-08 people_with_several_cards=1"
    )
    assert observed[("staging.region_counts", "participant counts are never negative")] == "2 of 8 rows, e.g. -7, -7"
    text = json.dumps([(r.observed, r.details) for r in report.results])
    assert batches.card(6) not in text and batches.person_key(6) not in text


def test_no_duckdb_progress_bars_on_our_or_gx_connections(settings):
    """A national extract's queries run over 2 s; DuckDB would draw progress bars into the log.
    (Setting `progress_bar_time` would switch them back on: we never set it.)"""
    import sqlalchemy

    con = database.connect(settings)
    try:
        assert con.execute("select current_setting('enable_progress_bar')").fetchone()[0] is False
    finally:
        con.close()
    gx_patches.no_duckdb_progress_bars()
    engine = sqlalchemy.create_engine(f"duckdb:///{settings.db_path}")
    try:
        with engine.connect() as connection:
            value = connection.execute(sqlalchemy.text("select current_setting('enable_progress_bar')")).scalar()
    finally:
        engine.dispose()
    assert value is False


def test_gx_sends_each_rule_once_and_counts_what_it_cannot_see_whole(settings, tmp_path):
    """A custom SQL rule's count comes from the rows its query returned (GX fetches up to 200): one
    query per rule, and GX's own count only past 200 rows. A column rule's examples are asked for
    only when GX counted unexpected values. The results are GX's either way."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    prepare(settings)
    rules = {
        "none": "select region_code from {batch} where region_code is null",
        "three": "select region_code from {batch} where region_code in ('3325', '3326', '3375') order by 1",
        "many": "select range as n from range(250)",
    }
    expectations = [
        {
            "type": "unexpected_rows_expectation",
            "kwargs": {"unexpected_rows_query": query},
            "meta": {"description": name},
        }
        for name, query in rules.items()
    ]
    expectations += [
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "region_code"},
            "meta": {"description": "filled"},
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "region_code", "value_set": ["3325"]},
            "meta": {"description": "only 3325"},
        },
    ]
    path = tmp_path / "ref.regions.json"
    path.write_text(json.dumps({"name": "ref.regions", "expectations": expectations, "meta": {}}), encoding="utf-8")

    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        report = checks.run_suites(settings, [path], "test-run", build_docs=False)
    finally:
        event.remove(Engine, "before_cursor_execute", record)

    observed = {result.expectation: (result.success, result.observed) for result in report.results}
    assert observed["none"] == (True, "0 rows")
    assert observed["three"] == (False, "3 rows: region_code=3325; region_code=3326; region_code=3375")
    assert observed["many"] == (False, "250 rows: n=0; n=1; n=2; n=3; n=4")
    assert observed["filled"][0] is True
    assert observed["only 3325"][0] is False and observed["only 3325"][1].startswith("513 of 514 rows, e.g. ")

    def runs(fragment: str) -> int:
        return sum(fragment in statement for statement in sent)

    assert runs("where region_code is null") == 1  # the rule's query, no count over it
    assert runs("where region_code in ('3325', '3326', '3375')") == 1  # its rows are the examples too
    assert runs("range(250)") == 2  # 250 rows: GX's count query as well
    examples_queries = [s for s in sent if "unexpected_values" in s]
    assert len(examples_queries) == 1 and "region_code" in examples_queries[0]  # only the failed column rule
