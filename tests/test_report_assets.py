"""The report's compiled chart assets are kept per user and machine, not per $JKN_HOME."""

from __future__ import annotations

import json

from flows import report


def test_the_assets_cache_is_the_users_and_outlives_a_home(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = report.assets_cache_dir(settings)
    assert folder == tmp_path / "xdg" / "jkn" and folder.is_dir()
    assert not str(folder).startswith(str(settings.home))

    monkeypatch.setattr(report, "_ASSETS", {})  # not this process's copy: what the folder keeps
    made = report.assets(folder)
    (cached,) = folder.glob("report-assets-*.json")
    assert json.loads(cached.read_text(encoding="utf-8"))["specs"] == made["specs"]
    assert set(made) == {"bundle", "specs"}  # vl-convert's script and the chart templates: no data goes in


def test_an_unwritable_user_cache_falls_back_to_the_home(settings, tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert report.assets_cache_dir(settings) == settings.home / "cache"
