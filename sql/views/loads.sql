-- one row per file in the load log, as the report lists it
select
    file_name,
    kind,
    period,
    rows_loaded,
    rows_rejected,
    status,
    message,
    loaded_at
from ops.load_log
