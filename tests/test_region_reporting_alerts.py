"""Issue 14, item 7: a region missing from the batch reaches its recipients and ops as "not reported this
month" with its last figures; two months in a row is escalated; it clears once when the region reports again.
Real marts built from staged rows, real lifecycle, the outbox channel (plain files, fast). The real flow run
that publishes the other regions is in tests/test_checks_gate.py (it reuses that test's first run)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from flows import alerts, metrics
from flows.settings import load_settings
from tests import rows

T0 = datetime(2022, 10, 5, 8, 0, tzinfo=UTC)
REGIONS = ("3325", "3326", "3327", "3375", "3601")
KEY = "region_not_reported:region:3327"


def _publish(con) -> None:
    rows.build(con)
    for name in metrics.mart_names():  # as metrics.publish does, without the snapshot a test does not need
        con.execute(f"create or replace table mart.{name} as select * from build.{name}")


def _month(con, month: str, missing: tuple[str, ...] = (), base: int = 900) -> None:
    rows.region_counts(con, month, {code: (base, 50) for code in REGIONS if code not in missing})
    _publish(con)


def _sent(con, run_id: str) -> dict[str, list[dict]]:
    """recipient scope -> this run's alerts about Kab. Pemalang not reporting."""
    found = {}
    messages = con.execute("select scope_code, payload from ops.outgoing where run_id = ?", [run_id]).fetchall()
    for scope, payload in messages:
        mine = [alert for alert in json.loads(payload)["alerts"] if alert["rule"] == "region_not_reported"]
        if mine:
            found[scope] = mine
    return found


def test_a_late_region_is_told_then_escalated_then_cleared(con, jkn_env, tmp_path):
    routing = tmp_path / "recipients.csv"
    routing.write_text(
        "scope_code,channel,address,language,digest\n"
        "3327,outbox,pemalang,id,true\nops,outbox,,en,true\n33,outbox,jateng,id,true\n3601,outbox,pandeglang,id,true\n",
        encoding="utf-8",
    )
    settings = load_settings(recipients=routing)
    rows.population(con, "2022-S1", {code: 1000 for code in REGIONS})
    _month(con, "2022-07", base=880)
    _month(con, "2022-08", base=890)
    alerts.send(con, settings, "run-aug", now=T0 - timedelta(days=60))
    assert _sent(con, "run-aug") == {}

    # September without Kab. Pemalang: a warning to its recipients (region, province, nation) and ops, not Banten.
    _month(con, "2022-09", missing=("3327",))
    alerts.send(con, settings, "run-sep", now=T0 - timedelta(days=30))
    september = _sent(con, "run-sep")
    assert set(september) == {"3327", "33", "ops"}
    [alert] = september["3327"]
    assert (alert["alert_key"], alert["state"], alert["severity"], alert["month"]) == (KEY, "new", "warning", "2022-09")
    last_figures = (alert["previous_month"], alert["previous_value"], alert["value"], alert["count"])
    assert last_figures == ("2022-08", 94.0, 1, 940)
    assert alert["actual_pct"] is None  # no trajectory figure of September is made up for it
    assert alert["message"].startswith(
        "Kab. Pemalang: belum melapor untuk September 2022; angka terakhir dari "
        "Agustus 2022 (cakupan 94,00%, 940 orang), bukan angka bulan ini."
    )
    assert "dieskalasi" not in alert["message"]
    [in_english] = september["ops"]
    assert "not reported for September 2022; last figures from August 2022 (coverage 94.00%" in in_english["message"]

    # October still without it: two months in a row, escalated to critical and sent again.
    _month(con, "2022-10", missing=("3327",), base=910)
    alerts.send(con, settings, "run-oct", now=T0)
    [alert] = _sent(con, "run-oct")["ops"]
    assert (alert["state"], alert["severity"], alert["value"], alert["previous_month"]) == (
        "worsened",
        "critical",
        2,
        "2022-08",
    )
    assert "Not reported for 2 months in a row: escalated." in alert["message"]
    assert set(_sent(con, "run-oct")) == {"3327", "33", "ops"}

    # November it reports again: one resolved notice, to the same recipients, and the alert is closed.
    _month(con, "2022-11", base=920)
    alerts.send(con, settings, "run-nov", now=T0 + timedelta(days=30))
    november = _sent(con, "run-nov")
    assert set(november) == {"3327", "33", "ops"}
    assert [alert["state"] for alert in november["3327"]] == ["resolved"]
    assert november["3327"][0]["message"] == (
        "Kab. Pemalang: sudah melapor lagi untuk November 2022; angkanya kembali angka bulan berjalan."
    )
    assert con.execute("select state from ops.alerts where alert_key = ?", [KEY]).fetchall() == [("resolved",)]
    alerts.send(con, settings, "run-nov-again", now=T0 + timedelta(days=31))
    assert _sent(con, "run-nov-again") == {}


def test_a_late_regions_open_alerts_still_count_as_open_in_the_run_summary(con, jkn_env, tmp_path):
    """A region that does not report has no findings: its alerts neither fire nor clear. The run's
    summary counts them open, as `jkn status` lists them (it used to count only what fired)."""
    routing = tmp_path / "recipients.csv"
    routing.write_text("scope_code,channel,address,language,digest\nops,outbox,,en,true\n", encoding="utf-8")
    settings = load_settings(recipients=routing)
    rows.population(con, "2022-S1", {code: 1000 for code in REGIONS})
    for month, pemalang in (("2022-07", 700), ("2022-08", 600)):  # Pemalang falls far behind
        counts = {code: (900, 50) for code in REGIONS}
        counts["3327"] = (pemalang, 50)
        rows.region_counts(con, month, counts)
        _publish(con)
    alerts.send(con, settings, "run-aug", now=T0 - timedelta(days=60))
    pemalang = con.execute("select count(*) from ops.alerts where state = 'open' and code = '3327'").fetchone()[0]
    assert pemalang >= 1

    _month(con, "2022-09", missing=("3327",))
    summary = alerts.send(con, settings, "run-sep", now=T0 - timedelta(days=30))
    open_alerts = con.execute("select rule, code from ops.alerts where state = 'open'").fetchall()
    assert summary["alerts_open"] == len(open_alerts)
    # Pemalang's earlier alerts are still open, beside the new "not reported" one
    assert len([code for rule, code in open_alerts if code == "3327" and rule != "region_not_reported"]) == pemalang
