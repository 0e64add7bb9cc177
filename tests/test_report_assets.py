"""The report's compiled chart assets are kept per user and machine, not per $JKN_HOME."""

from __future__ import annotations

import json
import re

from flows import report


def test_the_assets_cache_is_the_users_and_outlives_a_home(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = report.assets_cache_dir(settings)
    assert folder == tmp_path / "xdg" / "jkn" and folder.is_dir()
    assert not str(folder).startswith(str(settings.home))

    made = report.assets(folder)
    (cached,) = folder.glob("report-assets-*.json")
    assert json.loads(cached.read_text(encoding="utf-8"))["specs"] == made["specs"]
    # the script and the specs, none of the data: no region name, no NIK-like number
    text = cached.read_text(encoding="utf-8")
    assert "Pemalang" not in text and not re.search(r"(?<!\d)\d{16}(?!\d)", text)


def test_an_unwritable_user_cache_falls_back_to_the_home(settings, tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert report.assets_cache_dir(settings) == settings.home / "cache"
