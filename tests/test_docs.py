"""The repository stands alone: what users need of the contract and the domain is in docs/, every
link in the README and docs/ leads to a file in the repository, and the contract lists what the code has."""

import re
from pathlib import Path

from flows import database, errors, metrics, notices

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", ROOT / "seeds" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#]+)(?:#[^)]*)?\)")


def test_docs_exist_and_the_readme_links_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in ("docs/contract.md", "docs/domain.md", "docs/dependencies.md"):
        assert (ROOT / page).is_file()
        assert f"]({page})" in readme


def test_every_relative_link_leads_to_a_file_in_the_repository():
    for page in PAGES:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_no_page_sends_readers_to_files_outside_the_repository():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for name in ("CONTRACT.md", "DOMAIN.md", "DEPENDENCIES.md"):
            assert name not in text, f"{page.relative_to(ROOT)} mentions {name}, which is not in the repository"


def test_the_contract_lists_the_tables_exit_codes_and_notice_kinds_the_code_has():
    contract = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    published = [f"mart.{model.split('/')[1]}" for model in metrics.MODELS if model.startswith("marts/")]
    for table in [name for name in database.TABLES if name.startswith("ops.") and name != "ops.alert_events"]:
        assert f"`{table}`" in contract, table
    for table in published:
        assert f"`{table}`" in contract, table
    codes = {cls.exit_code for cls in vars(errors).values() if isinstance(cls, type) and hasattr(cls, "exit_code")}
    assert codes == {1, 2, 3, 4, 5}
    for code in codes | {0}:
        assert f"| `{code}` |" in contract, code
    for kind in notices.KINDS:
        assert f"`{kind}`" in contract, kind


def _whats_where() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## What's where", 1)[1]
    return section.split("```", 2)[1]


def test_whats_where_lists_every_module_and_folder_and_nothing_that_is_gone():
    """The README's tour of the tree names every module of the package (and of its subpackages) and
    every top-level folder a newcomer opens, and names no file that is not there."""
    block = _whats_where()
    listed: set[str] = set()
    parents: list[tuple[int, str]] = []  # (indent, folder) of the lines above
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        name = line.split()[0]
        while parents and parents[-1][0] >= indent:
            parents.pop()
        path = "/".join([folder for _, folder in parents] + [name.rstrip("/")])
        listed.add(path)
        if name.endswith("/"):
            parents.append((indent, name.rstrip("/")))
    package = ROOT / "flows"
    expected = {
        f"flows/{path.relative_to(package)}"
        for path in package.rglob("*")
        if (
            path.suffix in (".py", ".c")
            and path.name != "__init__.py"
            or path.is_dir()
            and path.name not in ("__pycache__", "static", "templates")
            and path.parent == package
        )
        and "__pycache__" not in path.parts
        and "static" not in path.relative_to(package).parts
        and "templates" not in path.relative_to(package).parts
    }
    expected |= {
        folder for folder in ("sql", "expectations", "seeds", "tests", "bench", "docs") if (ROOT / folder).is_dir()
    }
    missing = sorted(expected - listed)
    assert not missing, f"README.md's What's where does not name: {missing}"
    gone = sorted(path for path in listed if not (ROOT / path).exists())
    assert not gone, f"README.md's What's where names what is not in the tree: {gone}"
