"""Great Expectations set up for jkn's checks: the context, the DuckDB workarounds, the Data Docs store.

GX 1.24.1 with duckdb-engine loses every metric result (GX issues #10738,
#11579): GX fetches the cursor after its connection block closed, and closing
rolls the shared DuckDB connection back. GX already keeps one persisted
connection for sqlite for a related reason; `persist_duckdb_connection`
adds duckdb to that list. tests/test_checks.py fails if observed values come
back empty again.

GX takes ~3 s to import: this module imports it only inside its functions, which only the
check stages call (`flows/checks.py`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
from importlib.metadata import version
from pathlib import Path

from flows import gx_patches
from flows.settings import Settings

log = logging.getLogger(__name__)

DOCS_SITE = "jkn"
# Data Docs keep each suite's last runs (older validation results and pages are deleted), and the
# index lists the newest validations only: building it reads every validation it lists.
RUNS_KEPT = 30
DOCS_VALIDATIONS_LISTED = 100


def validations_dir(settings: Settings) -> Path:
    """GX's stored validation results, from which Data Docs list the runs."""
    return settings.home / "gx" / "validations"


def prune_validations(settings: Settings, keep: int = RUNS_KEPT) -> int:
    """Delete all but each suite's `keep` newest runs from the stored validation results and
    from the Data Docs pages (both laid out `validations/<schema>/<table>/<run>/...`)."""
    removed = 0
    for root in (validations_dir(settings), settings.data_docs_dir / "validations"):
        for suite_dir in (path for path in root.glob("*/*") if path.is_dir()):
            runs = sorted(
                (path for path in suite_dir.iterdir() if path.is_dir()),
                key=lambda path: path.stat().st_mtime,
                reverse=True,
            )
            for old in runs[keep:]:
                shutil.rmtree(old, ignore_errors=True)
                removed += 1
    return removed


def unrendered_validations(settings: Settings, skip=()) -> list:
    """Stored validation results without a Data Docs page (a check that deferred its pages, or a
    run that stopped before the docs were built), as GX's keys; `skip`: keys already to be rendered.
    Both stores lay a result out as `<schema>/<table>/<run name>/<run time>/<batch>.(json|html)`."""
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

    root, pages = validations_dir(settings), settings.data_docs_dir / "validations"
    skipped = {key.to_tuple() for key in skip}
    missing = []
    for path in sorted(root.glob("*/*/*/*/*.json")):
        relative = path.relative_to(root)
        key = (*relative.parts[:-1], relative.stem)
        if key not in skipped and not (pages / relative.with_suffix(".html")).exists():
            missing.append(ValidationResultIdentifier.from_tuple(key))
    return missing


def stale_suite_pages(settings: Settings, definitions: list[dict]) -> list[str]:
    """The suites whose Data Docs page must be rendered: new or changed since their page was (a
    suite's page shows only its expectations, and both check stages rebuild the docs every run)."""
    rendered = _rendered_suites(settings)
    return [
        definition["name"]
        for definition in definitions
        if rendered.get(definition["name"]) != _suite_digest(definition)
        or not _suite_page(settings, definition["name"]).exists()
    ]


def mark_suite_pages(settings: Settings, definitions: list[dict]) -> None:
    """Remember which version of each suite its page shows (after a docs build)."""
    rendered = _rendered_suites(settings)
    rendered.update({definition["name"]: _suite_digest(definition) for definition in definitions})
    path = _rendered_suites_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(rendered, indent=1, sort_keys=True), encoding="utf-8")
    partial.replace(path)


def _rendered_suites_path(settings: Settings) -> Path:
    return settings.home / "gx" / "suite_pages.json"


def _rendered_suites(settings: Settings) -> dict:
    try:
        return json.loads(_rendered_suites_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none recorded (or unreadable): every page is rendered


def _suite_digest(definition: dict) -> str:
    text = json.dumps([_gx_version(), definition], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.cache
def _gx_version() -> str:
    return version("great_expectations")  # reads the installed packages' metadata (~5 ms a call)


def _suite_page(settings: Settings, name: str) -> Path:
    return settings.data_docs_dir / "expectations" / Path(*name.split(".")).with_suffix(".html")


def prepare(settings: Settings | None = None) -> None:
    """The process-wide GX adjustments, once before any validation (`settings`: where compiled
    Data Docs templates are kept)."""
    gx_patches.quiet_gx()
    gx_patches.configuration_once_per_lookup()
    gx_patches.plain_values_converted_directly()
    gx_patches.columns_named_without_rows()
    if settings is not None:
        compiled_templates(settings)
    gx_patches.persist_duckdb_connection()
    gx_patches.no_duckdb_progress_bars()
    gx_patches.no_batch_notice()
    gx_patches.custom_sql_counted_from_its_rows()
    gx_patches.no_examples_query_without_unexpected()
    gx_patches.keep_unexpected_rows()


def compiled_templates(settings: Settings) -> None:
    """Data Docs are rendered with Jinja; each of GX's three page views has its own Jinja environment,
    which compiles the templates it uses (~75 a build, the bigger part of a small build). The views keep
    the compiled templates in Jinja's own bytecode cache under `$JKN_HOME/gx/templates`: compiled once
    for every view and every later build (Jinja checks each cached template against its source)."""
    from great_expectations.render.view.view import DefaultJinjaView
    from jinja2 import FileSystemBytecodeCache

    directory = settings.home / "gx" / "templates"
    directory.mkdir(parents=True, exist_ok=True)
    _TEMPLATE_CACHE["cache"] = FileSystemBytecodeCache(str(directory))
    if "templates" in gx_patches.ADJUSTED:
        return
    init = DefaultJinjaView.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.env.bytecode_cache = _TEMPLATE_CACHE["cache"]
        self.env.auto_reload = False  # GX's templates do not change while it runs (else: a stat per use)

    DefaultJinjaView.__init__ = __init__
    gx_patches.ADJUSTED.add("templates")


_TEMPLATE_CACHE: dict = {}
# Data Docs folders whose pages are written offline (`offline_pages`), as GX's store backends name them.
OFFLINE_SITES: set[str] = set()


def offline_pages(site: Path) -> None:
    """GX's pages load scripts from CDNs; those its builds write into `site` are written pointed at the
    vendored copies (`flows/data_docs.py`), instead of written by GX and then rewritten."""
    from great_expectations.data_context.store.tuple_store_backend import TupleFilesystemStoreBackend

    from flows import data_docs

    data_docs.copy_assets(site)
    OFFLINE_SITES.add(os.path.normpath(str(site.resolve())))
    if "offline" in gx_patches.ADJUSTED:
        return
    write = TupleFilesystemStoreBackend._set

    def _set(self, key, value, **kwargs):
        base = os.path.normpath(self.full_base_directory)
        if isinstance(value, str) and base in OFFLINE_SITES:
            relative = self._convert_key_to_filepath(key if isinstance(key, tuple) else key.to_tuple())
            if relative.endswith(".html"):
                value = data_docs.offline_page(value, len(Path(os.path.normpath(relative)).parts) - 1)
        return write(self, key, value, **kwargs)

    TupleFilesystemStoreBackend._set = _set
    gx_patches.ADJUSTED.add("offline")


def context(settings: Settings):
    """An ephemeral GX context: suites in memory, validation results and Data Docs on disk,
    no progress bars, no analytics, no temporary docs site."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        data_docs_sites={
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(settings.data_docs_dir.resolve()),
                },
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "validation_results_limit": DOCS_VALIDATIONS_LISTED,
                },
            }
        },
    )
    config.stores[config.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(validations_dir(settings).resolve()),
        },
    }
    ephemeral = gx.get_context(mode="ephemeral", project_config=config)
    # An ephemeral context "saves" its whole configuration, as YAML into a store in memory that nothing
    # reads, on every data source and asset added (~15 times a check stage, ~0.1 s): not here.
    ephemeral._save_project_config = lambda: None
    _index_reads_headers(ephemeral)
    _suites_read_once(ephemeral)
    return ephemeral


def _suites_read_once(ephemeral) -> None:
    """GX's suite collection deserialises a suite from its store on every `get` (marshmallow, then each
    expectation built anew): `add` reads the suite back, and each validation page reads its suite again
    for its meta. Here a suite is read from the store once and then kept until it is added or deleted
    again (nothing in the check stages changes a suite once added)."""
    factory = ephemeral.suites
    read, add, delete = factory.get, factory.add, factory.delete
    kept: dict = {}

    def get(name):
        if name not in kept:
            kept[name] = read(name=name)
        return kept[name]

    def add_suite(suite):
        kept.pop(suite.name, None)
        return add(suite)

    def delete_suite(name):
        kept.pop(name, None)
        return delete(name)

    factory.get, factory.add, factory.delete = get, add_suite, delete_suite


def _index_reads_headers(ephemeral) -> None:
    """The Data Docs index lists up to `DOCS_VALIDATIONS_LISTED` stored validation results, and GX's
    index builder loads each whole (its file, with every expectation's result, through marshmallow;
    ~3 ms each, more for a failed suite) for its success, meta and asset name. This context's
    `get_validation_result`, which only the index builder calls, now reads the stored JSON and returns
    those parts (`success`, `meta`, `statistics`, the suite) without the expectations' results."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    whole = ephemeral.get_validation_result

    def get_validation_result(
        expectation_suite_name,
        run_id=None,
        batch_identifier=None,
        validation_results_store_name=None,
        failed_only=False,
    ):
        if run_id is None or batch_identifier is None or failed_only:
            return whole(expectation_suite_name, run_id, batch_identifier, validation_results_store_name, failed_only)
        store = ephemeral.stores[validation_results_store_name or ephemeral.validation_results_store_name]
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=expectation_suite_name),
            run_id=run_id,
            batch_identifier=batch_identifier,
        )
        text = store._store_backend.get(store.key_to_tuple(key))
        if not text:
            return whole(expectation_suite_name, run_id, batch_identifier, validation_results_store_name, failed_only)
        stored = json.loads(text)
        return ExpectationSuiteValidationResult(
            success=stored["success"],
            results=[],
            suite_name=stored["suite_name"],
            suite_parameters=stored.get("suite_parameters"),
            statistics=stored.get("statistics"),
            meta=stored.get("meta"),
            id=stored.get("id"),
        )

    ephemeral.get_validation_result = get_validation_result


def close(datasource) -> None:
    """Close every connection GX opened. GX keeps the ephemeral context (and so
    the datasource's engines) alive after validation; an open connection would
    stop the next stage from opening the file with its own settings."""
    execution_engine = datasource._execution_engine
    if execution_engine is not None:
        if execution_engine._connection is not None:
            execution_engine._connection.close()
            execution_engine._connection = None
        execution_engine.engine.dispose()
    if datasource._engine is not None:
        datasource._engine.dispose()
