"""Data Docs render a suite's page again only when the suite changed or its page is gone: both check
stages rebuild the docs every run, and a suite's page does not depend on the run."""

from __future__ import annotations

from flows import checks, gx_patches, gx_setup


def _page(settings, name: str):
    return settings.data_docs_dir / "expectations" / f"{name.replace('.', '/')}.html"


def test_suite_pages_are_rendered_again_only_when_their_suite_changed(settings):
    definitions = [checks.read_suite(path) for path in checks.suite_files("build.")]
    names = [definition["name"] for definition in definitions]
    assert gx_setup.stale_suite_pages(settings, definitions) == names  # nothing rendered yet

    for name in names:
        _page(settings, name).parent.mkdir(parents=True, exist_ok=True)
        _page(settings, name).write_text("<html></html>", encoding="utf-8")
    gx_setup.mark_suite_pages(settings, definitions)
    assert gx_setup.stale_suite_pages(settings, definitions) == []

    changed = {**definitions[0], "expectations": definitions[0]["expectations"][:-1]}
    assert gx_setup.stale_suite_pages(settings, [changed, *definitions[1:]]) == [names[0]]
    _page(settings, names[1]).unlink()
    assert gx_setup.stale_suite_pages(settings, definitions) == [names[1]]


def test_expectation_kwargs_are_the_ones_gx_computes(monkeypatch):
    """`configuration_once_per_lookup` builds the configuration once per call: every expectation of every
    suite gets the same domain, success and runtime kwargs as from GX's own methods."""
    import great_expectations as gx
    from great_expectations.expectations.expectation import Expectation

    gx_setup.prepare()
    expectations = [
        expectation
        for path in checks.suite_files()
        for expectation in gx.ExpectationSuite(**checks.read_suite(path)).expectations
    ]
    assert len(expectations) > 150

    def kwargs_of(expectation):
        keys = [*expectation.runtime_keys, *expectation.success_keys, *expectation.domain_keys]
        return (
            expectation._get_domain_kwargs(),
            expectation._get_success_kwargs(),
            expectation._get_runtime_kwargs(),
            expectation._get_runtime_kwargs({"result_format": "BASIC", "catch_exceptions": False}),
            [expectation._get_success_kwarg(key, "no default") for key in keys],
        )

    ours = [kwargs_of(expectation) for expectation in expectations]
    for name in ("_get_domain_kwargs", "_get_success_kwargs", "_get_runtime_kwargs", "_get_success_kwarg"):
        monkeypatch.setattr(Expectation, name, gx_patches.GX_ORIGINALS[name])
    assert ours == [kwargs_of(expectation) for expectation in expectations]


def test_plain_values_are_converted_as_gx_converts_them():
    import copy
    import datetime
    import decimal

    import numpy as np
    from great_expectations.core import id_dict

    gx_setup.prepare()
    gx_own = gx_patches.GX_ORIGINALS["convert_to_json_serializable"]
    assert id_dict.convert_to_json_serializable is not gx_own  # the ids of metrics use the direct one
    values = [
        None,
        "text",
        0,
        -3,
        True,
        1.5,
        float("inf"),
        float("nan"),
        [],
        (),
        {2, 1},
        {1: [1, (2, None)], "b": {"c": None, "d": [True, 2.5]}},
        {"column": "month", "batch_id": "jkn-build.coverage", "row_condition": None},
        np.int64(3),
        np.float64(2.5),
        np.bool_(False),
        [np.int32(1), {"x": np.float32(0.5)}],
        datetime.date(2024, 6, 1),
        decimal.Decimal("1.25"),
    ]
    for value in values:
        assert id_dict.convert_to_json_serializable(copy.deepcopy(value)) == gx_own(copy.deepcopy(value)), value


def test_a_query_batch_is_named_from_no_rows(settings):
    """duckdb-engine cannot reflect a query's columns: GX's fallback ran the whole batch query; the same
    column names now come from `select * from (...) limit 0`."""
    import great_expectations.expectations.metrics.util as metrics_util
    from sqlalchemy import create_engine, event, text

    from flows.database import duckdb_config
    from tests.fixtures.checks import batches

    batches.prepare(settings)
    gx_setup.prepare()
    engine = create_engine(f"duckdb:///{settings.db_path}", connect_args={"config": duckdb_config(settings)})
    sent = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    try:
        for relation in ("staging.participants", "staging.employers", "build.coverage"):
            if relation == "build.coverage":
                with engine.connect() as con:  # no marts in the fixture: a table of the same kind
                    con.execute(text("create table build_coverage_like as select 1 as month, 'x' as level"))
                    con.commit()
                relation = "build_coverage_like"
            query = text(checks.batch_query(relation))
            sent.clear()
            ours = metrics_util.column_reflection_fallback(query, engine.dialect, engine)
            assert sent and all(statement.endswith("limit 0") for statement in sent), sent
            gx_own = gx_patches.GX_ORIGINALS["column_reflection_fallback"](query, engine.dialect, engine)
            assert ours == gx_own and len(ours) > 1
    finally:
        engine.dispose()


def test_the_index_reads_what_gx_reads_from_each_stored_result(settings):
    """The Data Docs index asks the context for each listed result: success, meta and suite read from the
    stored JSON are GX's own load of the whole result (without its expectations' results)."""
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

    from tests.fixtures.checks import batches

    batches.prepare(settings)
    checks.run_suites(settings, checks.suite_files("staging."), "run-index")
    context = gx_setup.context(settings)
    root = gx_setup.validations_dir(settings)
    keys = [
        ValidationResultIdentifier.from_tuple((*path.relative_to(root).parts[:-1], path.stem))
        for path in sorted(root.glob("*/*/*/*/*.json"))
    ]
    assert len(keys) == 5
    for key in keys:
        arguments = (key.expectation_suite_identifier.name, key.run_id, key.batch_identifier)
        read = context.get_validation_result(*arguments)
        whole = type(context).get_validation_result(context, *arguments)
        assert whole.results and not read.results
        assert (read.success, read.meta, read.suite_name, read.asset_name, read.statistics) == (
            whole.success,
            whole.meta,
            whole.suite_name,
            whole.asset_name,
            whole.statistics,
        )


def test_gx_imported_early_on_a_thread_is_every_module_the_checks_import():
    """checks.import_gx_early (a run's GX import while its ingest works): in a fresh interpreter, the
    thread imports each of GX_MODULES, and the checks' own imports then find them there."""
    import subprocess
    import sys

    code = (
        "import sys, threading\n"
        "from flows import checks\n"
        "assert 'great_expectations' not in sys.modules\n"
        "checks.import_gx_early(); checks.import_gx_early()\n"
        "assert len(checks._early_import) == 1 and checks._early_import[0] is not threading.current_thread()\n"
        "checks._early_import[0].join()\n"
        "missing = [name for name in checks.GX_MODULES if name not in sys.modules]\n"
        "assert not missing, missing\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
