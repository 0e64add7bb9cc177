from pathlib import Path

from flows import alerts

SQL = Path(__file__).parent.parent / "sql"


def test_every_alert_rule_file_is_a_rule_once_and_every_rule_has_a_file():
    on_disk = sorted(path.stem for path in (SQL / "alerts").glob("*.sql"))
    assert sorted(alerts.RULE_NAMES) == on_disk
    assert len(set(alerts.RULE_NAMES)) == len(alerts.RULE_NAMES)
    assert all(rule.path.exists() and rule.layer == "alerts" for rule in alerts.RULES)


def test_every_rule_in_the_seed_has_a_file_and_the_other_way_round():
    seed = (Path(__file__).parent.parent / "seeds" / "alert_rules.csv").read_text(encoding="utf-8").splitlines()
    assert sorted(line.split(",")[0] for line in seed[1:] if line) == sorted(alerts.RULE_NAMES)
