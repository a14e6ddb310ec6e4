"""Reading data: CSV and Parquet files (whole, or streamed in batches), the encoder for mixed tables, and
time series (checked time axis, sliding windows), and images (files, MVTec-AD-layout folders)."""

from .encoder import MAX_CATEGORIES, ColumnCode, TabularEncoder, as_arrow
from .images import (
    IMAGE_SUFFIXES,
    ImageFolder,
    ImageReading,
    is_image_folder,
    read_image_folder,
    read_images,
    read_masks,
)
from .labels import as_labels, label_like_columns, label_like_warning
from .readers import (
    BATCH_ROWS,
    CsvFile,
    check_columns,
    count_rows,
    csv_file,
    iter_batches,
    prefetch,
    read_table,
    table_columns,
    table_format,
)
from .series import FILL_OPTIONS, Series, check_step, prepare_series
from .windows import WARMUP_SCORE, n_windows, per_step, sliding_windows

__all__ = [
    "BATCH_ROWS",
    "FILL_OPTIONS",
    "IMAGE_SUFFIXES",
    "MAX_CATEGORIES",
    "WARMUP_SCORE",
    "ColumnCode",
    "CsvFile",
    "ImageFolder",
    "ImageReading",
    "Series",
    "TabularEncoder",
    "as_arrow",
    "as_labels",
    "check_columns",
    "check_step",
    "count_rows",
    "csv_file",
    "is_image_folder",
    "iter_batches",
    "label_like_columns",
    "label_like_warning",
    "n_windows",
    "per_step",
    "prefetch",
    "prepare_series",
    "read_image_folder",
    "read_images",
    "read_masks",
    "read_table",
    "sliding_windows",
    "table_columns",
    "table_format",
]
