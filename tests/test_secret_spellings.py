"""A secret is hidden in every spelling: percent-encoded, with spaces or `|`, in an encoded path or
the query, in ops.deliveries.detail, in log records and on the console of a real `jkn alerts`."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from urllib.parse import quote, quote_plus

import requests

from flows import alerts, scrub
from flows.settings import load_settings
from tests.test_alerts import T0, create_marts, put_trajectory, recipients_file
from tests.test_channels import free_port


def marked_url(port: int) -> tuple[str, list[str]]:
    """A webhook URL whose token pieces each carry a random marker: a marker seen anywhere means a
    piece of the secret got out, whatever spelling it was in."""
    markers = [secrets.token_hex(6) for _ in range(4)]
    url = (
        f"http://127.0.0.1:{port}/hooks/tok%7C{markers[0]}/a%2Fb c|{markers[1]}"
        f"?sig=pa ss|{markers[2]}&key=%2B{markers[3]}"
    )
    return url, markers


def test_every_spelling_of_a_url_secret_is_hidden():
    url, markers = marked_url(9)
    spellings = [
        url,
        requests.utils.requote_uri(url),
        quote(url),
        quote(url, safe=""),
        quote_plus(url),
        quote(quote(url, safe="")),
        quote(url, safe="").replace("%7C", "%7c"),
        url.replace("%7C", "|").replace("%2F", "/"),
        url.replace(" ", "%20").replace("|", "%7C"),
    ]
    for spelling in spellings:
        shown = scrub.hide_secrets(f"error posting to {spelling}: refused", url)
        assert not any(marker in shown for marker in markers), (spelling, shown)
        assert shown.startswith("error posting to ") and shown.endswith(": refused")
    # the path alone, as urllib3 words it, and the query alone
    path = requests.utils.requote_uri(url).split("127.0.0.1:9")[1]
    for piece in (path, path.split("?")[1], path.split("?")[0]):
        assert not any(marker in scrub.hide_secrets(piece, url) for marker in markers)


def test_a_password_is_hidden_raw_and_encoded():
    password = "p@ss word|" + secrets.token_hex(4)
    for spelling in (password, quote(password), quote_plus(password), quote(password, safe="").lower()):
        assert scrub.hide_secrets(f"login {spelling} refused", password) == "login <hidden> refused"


def test_webhook_secret_in_odd_spellings_reaches_no_detail_log_or_console(con, jkn_env, tmp_path, caplog):
    url, markers = marked_url(free_port())  # nothing listens: the error messages quote the URL
    routing = recipients_file(tmp_path / "none.csv", [])
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.73, 89.35, "BEHIND")})
    fast = {"JKN_DELIVERY_RETRIES": "1", "JKN_DELIVERY_BACKOFF_SECONDS": "0.01"}

    settings = load_settings(recipients=routing, webhook_url=url, delivery_retries=1, delivery_backoff_seconds=0.01)
    with caplog.at_level(logging.INFO):
        summary = alerts.send(con, settings, "run-1", now=T0)
        logging.getLogger("jkn.test").warning("posting to %s failed", requests.utils.requote_uri(url))
    assert summary["pending"] == 1
    details = [row[0] for row in con.execute("select detail from ops.deliveries").fetchall()]
    assert len(details) == 2 and all("ConnectionError" in detail for detail in details)
    con.close()

    console = subprocess.run(
        [sys.executable, "-m", "flows.cli", "alerts"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JKN_WEBHOOK_URL": url, "JKN_RECIPIENTS": str(routing), **fast},
    )
    assert console.returncode == 0, console.stderr
    assert "still pending" in console.stdout
    logs = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert "posting to <hidden> failed" in logs
    for place, text in (
        ("ops.deliveries.detail", "\n".join(details)),
        ("logs", logs),
        ("console", console.stdout + console.stderr),
    ):
        leaked = [marker for marker in markers if marker in text]
        assert leaked == [], f"{place} shows a piece of the webhook URL: {text[:2000]}"


def test_plain_words_of_a_url_path_are_not_blanked_out_of_ordinary_text():
    url = "https://chat.example/services/alerts/T0ABCDEF1?x=1"
    assert scrub.hide_secrets("task alerts finished; services up", url) == "task alerts finished; services up"
    assert scrub.hide_secrets("token T0ABCDEF1 refused", url) == "token <hidden> refused"
