"""Reading data: CSV and Parquet files (whole, or streamed in batches), the encoder for mixed tables, and
time series (checked time axis, sliding windows)."""

from .encoder import MAX_CATEGORIES, ColumnCode, TabularEncoder, as_arrow
from .labels import as_labels
from .readers import (
    BATCH_ROWS,
    check_columns,
    count_rows,
    iter_batches,
    prefetch,
    read_table,
    table_columns,
    table_format,
)

__all__ = [
    "BATCH_ROWS",
    "MAX_CATEGORIES",
    "ColumnCode",
    "TabularEncoder",
    "as_arrow",
    "as_labels",
    "check_columns",
    "count_rows",
    "iter_batches",
    "prefetch",
    "read_table",
    "table_columns",
    "table_format",
]
