"""The national-scale benchmark (issue 9): `python -m bench --rows 10000000`.

Generates national-shaped extracts with the project's generator, then measures on the
same files, each in its own fresh process, wall time and peak memory of:
- the floor: DuckDB alone loading the participants file into a table;
- our pipeline, stage by stage (the functions the Prefect flow's tasks wrap) and as
  the whole Prefect flow, so Prefect's own overhead shows separately;
- the baseline a team would otherwise write: pandas + Great Expectations on pandas;
- the strong peer a team that knows polars would write: one lazy, streaming polars query
  with ingest's row rules, the key checks and coverage by region (`peer`).
Prints a table with the ratios and writes results JSON (BENCHMARKS.md has the figures).

Modules: `run` (one benchmark run: the options and the steps in order), `data` (the landing folder
measured: given, cached or generated), `measure` (fresh processes, process-tree RSS sampling),
`workloads` (what runs inside them: the floor, and the entry point), `our_pipeline` (our stages and
flow), `baseline` (pandas + GX), `peer` (the polars peer), `results` (ratios, targets, machine: the
results JSON), `summary` (the table), `growth` (cost against rows across runs).
"""
