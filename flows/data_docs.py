"""Make GX's Data Docs readable offline.

GX writes pages that load jQuery, Bootstrap and bootstrap-table from public CDNs; the index's list
of validations is filled in by bootstrap-table, so on a machine without internet access it showed
nothing. After each build, the vendored copies (`flows/static/data_docs/`, see its README) go next
to the pages and every page points at them; what is not vendored (icons, dark mode, logos, Vega) is
dropped from the pages, which read without it. The report does the same for its charts. The check
stages' builds write each page offline in the first place (`gx_setup.offline_pages` calls `offline_page`
as GX stores it): rewriting a page just written cost a second write of every page.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

VENDORED = Path(__file__).parent / "static" / "data_docs"
FOLDER = "static/vendor"  # inside the Data Docs folder

# CDN address (any version GX 1.24 asks for) -> vendored file; None: the tag is dropped.
ASSETS = {
    r"https://code\.jquery\.com/jquery-3\.7\.1\.min\.js": "jquery-3.7.1.min.js",
    r"https://stackpath\.bootstrapcdn\.com/bootstrap/4\.3\.1/js/bootstrap\.min\.js": "bootstrap-4.3.1.min.js",
    r"https://maxcdn\.bootstrapcdn\.com/bootstrap/4\.3\.1/css/bootstrap\.min\.css": "bootstrap-4.3.1.min.css",
    r"https://cdnjs\.cloudflare\.com/ajax/libs/popper\.js/1\.12\.9/umd/popper\.min\.js": "popper-1.12.9.min.js",
    r"https://unpkg\.com/bootstrap-table@1\.19\.1/dist/bootstrap-table\.min\.js": "bootstrap-table-1.19.1.min.js",
    r"https://unpkg\.com/bootstrap-table@1\.19\.1/dist/bootstrap-table\.min\.css": "bootstrap-table-1.19.1.min.css",
    r"https://unpkg\.com/bootstrap-table@1\.19\.[01]/dist/extensions/filter-control/"
    r"bootstrap-table-filter-control(\.min)?\.js": "bootstrap-table-filter-control-1.19.1.min.js",
    r"https://unpkg\.com/bootstrap-table@1\.19\.[01]/dist/extensions/filter-control/"
    r"bootstrap-table-filter-control(\.min)?\.css": "bootstrap-table-filter-control-1.19.1.min.css",
    r"https://cdnjs\.cloudflare\.com/ajax/libs/bootstrap-datepicker/1\.9\.0/js/bootstrap-datepicker\.min\.js": "bootstrap-datepicker-1.9.0.min.js",  # noqa: E501 - a URL
    r"https://cdnjs\.cloudflare\.com/ajax/libs/bootstrap-datepicker/1\.9\.0/css/bootstrap-datepicker\.min\.css": "bootstrap-datepicker-1.9.0.min.css",  # noqa: E501 - a URL
}
# Tags whose source is a CDN we do not vendor: removed, so a page never waits on the network for them.
DROPPED = re.compile(
    r"<(script|link)\b[^>]*(src|href)=\"https://(cdn\.jsdelivr\.net|cdnjs\.cloudflare\.com/ajax/libs/font-awesome)"
    r"[^\"]*\"[^>]*>(\s*</script>)?",
    re.IGNORECASE,
)


def copy_assets(site: Path) -> None:
    """The vendored scripts and styles, next to the pages (`static/vendor`)."""
    target = site / FOLDER
    target.mkdir(parents=True, exist_ok=True)
    for path in VENDORED.glob("*.min.*"):
        if not (target / path.name).exists() or (target / path.name).stat().st_size != path.stat().st_size:
            shutil.copyfile(path, target / path.name)


def offline_page(text: str, depth: int) -> str:
    """A page's HTML pointed at the vendored copies; `depth`: how many folders below the site's root it is."""
    prefix = "../" * depth
    changed = DROPPED.sub("", text)
    for pattern, name in ASSETS.items():
        changed = re.sub(pattern, f"{prefix}{FOLDER}/{name}", changed)
    return changed
