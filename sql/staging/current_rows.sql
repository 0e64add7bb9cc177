-- one row per row of raw.<kind> that a current load supplies: a table macro, staging.current_rows('<kind>')
-- The one "current rows" rule each staging view reads its kind's rows through: a load current for all it
-- covers (staging.current_loads.is_whole_load) is read whole, the usual case, with no per-row test; one
-- partly replaced by a province file only for the provinces it still supplies. DuckDB inlines the macro
-- where a view calls it, so a filter on the view still reaches each part's Parquet scan.
-- The loads not as one CTE read by both branches: with that CTE (materialised) DuckDB read every column of
-- every part whatever the query asked for (a count over staging.employers took 5x as long).
-- `extract_kind` is the macro's parameter, not a column (hence the noqa: sqlfluff cannot tell).
with partial_slices as (
    select
        current_loads.load_id,
        current_loads.province_code
    from staging.current_loads as current_loads
    where
        current_loads.kind = extract_kind  -- noqa: RF03
        and not current_loads.is_whole_load
)

select extract_rows.*  -- noqa: AM04
from query_table('raw.' || extract_kind) as extract_rows  -- noqa: RF03
where
    extract_rows.load_id in (
        select current_loads.load_id
        from staging.current_loads as current_loads
        where
            current_loads.kind = extract_kind  -- noqa: RF02, RF03
            and current_loads.is_whole_load
    )
union all
select extract_rows.*
from query_table('raw.' || extract_kind) as extract_rows  -- noqa: RF02
semi join partial_slices
    on
        extract_rows.load_id = partial_slices.load_id
        and left(extract_rows.region_code, 2) = partial_slices.province_code
