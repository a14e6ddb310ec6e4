"""The one modality dispatch: :func:`fit`, :func:`score` and :func:`evaluate` over paths.

Each picks the modality once, from the detector's declared ``input_kind`` (for ``fit``, the detector named
or the default for the data; for ``score`` and ``evaluate``, the model folder's), never from what the data
path looks like: a partitioned Parquet dataset is a folder too. The command line, run files and the service
call these three; the per-modality functions behind them are in :mod:`.fit` / :mod:`.score` /
:mod:`.evaluate` (tables), :mod:`.series` and :mod:`.images`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._core import InputError
from ..data import BATCH_ROWS, csv_file, is_image_folder, table_columns
from ..detectors import get_detector
from ..model import Model
from ..results import Evaluation
from .checks import with_cli_advice
from .evaluate import evaluate_file
from .fit import FitResult, fit_file, warn_label_like
from .images import evaluate_image_folder, fit_image_folder, score_images
from .multimodal import PART_FORM, check_multimodal_flags, fit_multimodal_file, score_multimodal_file
from .score import BatchHook, RowProgress, ScoreResult, score_file
from .series import evaluate_series_file, fit_series_file, score_series_file
from .text import evaluate_text_file, fit_text_file, score_text_file

#: The detector of each kind of data when none is named.
DEFAULT_MODELS = {"table": "autoencoder", "series": "cnn-forecaster", "images": "conv-autoencoder", "text": "text"}


def choose_detector(
    data: str | Path, model: str | None, time_column: str | None, text_column: str | None = None
) -> str:
    """The detector a fit of ``data`` uses: ``model``, or the default for the data's kind (a series with a
    time column, text with a text column or a ``.log`` file, an image folder in the MVTec AD layout, a table
    otherwise)."""
    if model is not None:
        get_detector(model)  # unknown names fail here, with the list of known ones
        return model
    text = text_column is not None or Path(data).suffix.lower() == ".log"
    kind = "series" if time_column is not None else "text" if text else "images" if is_image_folder(data) else "table"
    return DEFAULT_MODELS[kind]


def fit(
    data: str | Path,
    *,
    out: str | Path,
    model: str | None = None,
    params: Iterable[str] | Mapping[str, Any] | None = None,
    label_column: str | None = None,
    threshold: str | None = None,
    contaminated: bool = False,
    impute: str | None = None,
    max_categories: int = 50,
    drop: Sequence[str] = (),
    time_column: str | None = None,
    image_size: Sequence[int] | None = None,
    seed: int | None = 0,
    callback: Callable[[int, float, float | None], None] | None = None,
    text_column: str | None = None,
    date_format: str | None = None,
    dayfirst: bool | None = None,
    time_unit: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
    parts: Iterable[str] | Mapping[str, Any] | None = None,
) -> FitResult:
    """Fit a detector on ``data`` and save the model folder ``out``; one dispatch on the detector's input kind.

    ``model`` names the detector; without it the default for the data is used: a series detector when
    ``time_column`` is given, an image detector for a folder in the MVTec AD layout (``train/good/``), the
    autoencoder otherwise. The other arguments are those of :func:`fit_file` (tables),
    :func:`~anomalia.workflows.series.fit_series_file` (``time_column``) and
    :func:`~anomalia.workflows.images.fit_image_folder` (``image_size``); an argument that does not apply to
    the data's kind is an error rather than silently ignored. ``date_format``, ``dayfirst`` and ``time_unit``
    say how a series' time column is read (by default decided from its values); ``encoding``, ``delimiter``
    and ``decimal`` how a CSV file is read (by default UTF-8, and the delimiter and decimal point found from
    its first lines). ``parts`` (``NAME=DETECTOR:COLUMNS`` strings or
    a mapping, see :func:`~anomalia.workflows.multimodal.fit_multimodal_file`) fits a multimodal model.
    """
    if parts is not None:
        opts = {"model": model, "contaminated": contaminated, "impute": impute, "drop": list(drop) or None}
        opts |= {"time_column": time_column, "image_size": image_size, "text_column": text_column}
        check_multimodal_flags(
            opts,
            **{"date_format": date_format, "dayfirst": dayfirst is not None, "time_unit": time_unit},
            **{"encoding": encoding, "delimiter": delimiter, "decimal": decimal},
        )
        return fit_multimodal_file(
            data, parts=parts, out=out, params=params, label_column=label_column, threshold=threshold, seed=seed
        )
    name = choose_detector(data, model, time_column, text_column)
    kind = get_detector(name).input_kind
    if kind == "images":
        _refuse(kind, encoding=encoding, delimiter=delimiter, decimal=decimal)
    data = csv_file(data, encoding, delimiter, decimal)
    timing = {"date_format": date_format, "dayfirst": dayfirst, "time_unit": time_unit}
    if kind != "series":
        _refuse(kind, **timing)
    common = {"out": out, "model": name, "params": params, "threshold": threshold, "seed": seed, "callback": callback}
    if kind == "multimodal":
        raise InputError(f"a multimodal fit needs its parts: --part {PART_FORM} (repeatable), or a run file's parts:")
    if kind == "text":  # a log file (one record per line) or a table's --text-column
        _refuse(kind, impute=impute, drop=drop or None, time_column=time_column, image_size=image_size)
        return fit_text_file(
            data, text_column=text_column, label_column=label_column, contaminated=contaminated, **common
        )
    _refuse(kind, text_column=text_column)
    if kind == "images":
        _refuse(kind, label_column=label_column, impute=impute, drop=drop or None, time_column=time_column)
        with _cli_advice(data):
            return fit_image_folder(data, size=image_size, contaminated=contaminated, **common)
    _refuse(kind, image_size=image_size)
    if kind == "series":
        _refuse(kind, impute=impute)
        with _cli_advice(data):
            return fit_series_file(
                data,
                time_column=time_column,
                label_column=label_column,
                drop=drop,
                contaminated=contaminated,
                **timing,
                **common,
            )
    _refuse(kind, time_column=time_column)
    return fit_file(
        data,
        label_column=label_column,
        contaminated=contaminated,
        impute=impute,
        max_categories=max_categories,
        drop=drop,
        **common,
    )


def _refuse(kind: str, **given: Any) -> None:
    bad = [k for k, v in given.items() if v is not None]
    if bad:
        flags = ", ".join("--" + k.replace("_", "-") for k in bad)
        raise InputError(f"{flags} does not apply to {kind} data; leave it out (or name a detector of the right kind)")


def score(
    model: str | Path | Model,
    data: str | Path,
    out: str | Path,
    *,
    explain: str = "flagged",
    top_k: int = 3,
    keep: Sequence[str] = (),
    batch_rows: int = BATCH_ROWS,
    threads: int | None = None,
    heatmaps: str | Path | None = None,
    progress: RowProgress | None = None,
    on_batch: BatchHook | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
) -> ScoreResult:
    """Score ``data`` with the model folder ``model`` and write ``out``, whatever the model reads.

    Dispatches once, on the model's ``input_kind``: a table file (streamed), a series file, or images (an
    image file, an MVTec-layout folder's ``test/`` images, or every image under a folder; ``heatmaps``
    writes one overlay PNG per image there). ``on_batch(rows, input_rows)`` sees every scored batch.
    ``encoding``, ``delimiter`` and ``decimal`` say how a CSV file is read (by default: detected).
    """
    m = model if isinstance(model, Model) else Model.load(model)
    if m.input_kind == "images":
        _refuse("images", encoding=encoding, delimiter=delimiter, decimal=decimal)
    data = csv_file(data, encoding, delimiter, decimal)
    if m.input_kind == "images":
        with _cli_advice(data):
            return score_images(m, data, out, heatmaps=heatmaps, on_batch=on_batch)
    if heatmaps is not None:
        raise InputError(f"--heatmaps is for image models; {m.name!r} is a {m.detector.name} model of {m.input_kind}s")
    if m.input_kind == "text":
        return score_text_file(m, data, out, explain=explain, top_k=top_k, keep=keep, batch_rows=batch_rows)
    if m.input_kind == "multimodal":
        return score_multimodal_file(m, data, out, keep=keep)
    if m.input_kind == "series":
        with _cli_advice(data):
            return score_series_file(m, data, out, explain=explain, top_k=top_k, keep=keep, on_batch=on_batch)
    return score_file(
        m,
        data,
        out,
        batch_rows=batch_rows,
        explain=explain,
        top_k=top_k,
        keep=keep,
        progress=progress,
        threads=threads,
        on_batch=on_batch,
    )


def evaluate(
    model: str | Path | Model,
    data: str | Path,
    *,
    label_column: str | None = None,
    target_precision: float = 0.9,
    target_recall: float = 0.9,
    require_labels: bool = False,
    progress: RowProgress | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
) -> Evaluation:
    """Evaluate the model folder ``model`` on ``data``: one dispatch on the model's ``input_kind``.

    ``require_labels`` refuses a table or series file without ``label_column`` (``anomalia evaluate``
    measures against labels; ``anomalia report`` draws unlabelled data too). Image folders are labelled by
    their layout. ``encoding``, ``delimiter`` and ``decimal`` say how a CSV file is read (by default: detected).
    """
    m = model if isinstance(model, Model) else Model.load(model)
    if m.input_kind == "images":
        _refuse("images", encoding=encoding, delimiter=delimiter, decimal=decimal)
    data = csv_file(data, encoding, delimiter, decimal)
    if m.input_kind == "multimodal":
        raise InputError("evaluate and report do not read multimodal models yet; score the file with `anomalia score`")
    if label_column is None and m.label_column is not None and m.input_kind != "images":
        label_column = _saved_label_column(m.label_column, data, required=require_labels)
    if m.input_kind != "images":
        warn_label_like(m.input_columns, f"model {m.name!r}")
    if require_labels and label_column is None and m.input_kind != "images":
        raise InputError("--label-column is needed to evaluate a file: the column with 1 = anomaly, 0 = normal")
    targets = {"target_precision": target_precision, "target_recall": target_recall}
    if m.input_kind == "images":
        if label_column is not None:
            raise InputError("--label-column does not apply to image folders: test/good/ and test/<kind>/ label them")
        return evaluate_image_folder(m, data, **targets)
    if m.input_kind == "series":
        with _cli_advice(data):
            return evaluate_series_file(m, data, label_column=label_column, **targets)
    if m.input_kind == "text":
        return evaluate_text_file(m, data, label_column=label_column, **targets)
    return evaluate_file(m, data, label_column=label_column, progress=progress, **targets)


def _saved_label_column(name: str, data: str | Path, *, required: bool) -> str | None:
    """The model's saved label column, when ``data`` has it (``evaluate`` needs it: then it must be there)."""
    if required:
        return name
    try:
        columns = table_columns(data)
    except (InputError, OSError):
        return None
    return name if name in columns else None


@contextlib.contextmanager
def _cli_advice(data: str | Path) -> Iterator[None]:
    """Series and image checks speak Python (``resample='5min'``); over a file they name it and give flags."""
    try:
        yield
    except InputError as exc:
        raise with_cli_advice(exc, data) from None
