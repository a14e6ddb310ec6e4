"""Files of records with several parts: fit, score and evaluate a multimodal detector on a CSV / Parquet table
whose columns make the parts (``anomalia fit data.csv --part numbers=autoencoder:cpu,mem --part
message=text:msg``, or a run file's ``parts:`` block).

A part is ``NAME=DETECTOR:COLUMN[,COLUMN...]``: the part's name (no dots), a registered detector of one row or
one text per record, and the table columns it reads (a text part reads exactly one). The column map is a
detector argument (``columns``) saved with the model, so scoring reads new files the same way. ``--set``
keys ``NAME.key=value`` go to that part's detector, the others (``fusion``, ``scale_fraction``, ...) to the
multimodal detector.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._core import InputError, ParameterError
from ..data import as_labels, read_table, table_format
from ..detectors import detector_names, get_detector, make_detector
from ..model import Model
from .fit import FitResult, make_fit_detector, parse_params
from .score import ScoreResult, Writer

_PART = re.compile(r"^\s*([^=.:,\s]+)\s*=\s*([A-Za-z0-9_-]+)\s*:\s*(.+?)\s*$")
#: What a part's specification looks like (for error messages).
PART_FORM = "NAME=DETECTOR:COLUMN[,COLUMN...], e.g. numbers=autoencoder:cpu,mem or message=text:msg"


def parse_parts(specs: Iterable[str] | Mapping[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """Part name -> (detector name, columns) from ``--part`` strings or a run file's ``parts:`` block (a
    mapping of name -> ``{detector: NAME, columns: [...]}`` or -> ``"DETECTOR:COL,COL"``)."""
    out: dict[str, tuple[str, list[str]]] = {}
    items: list[tuple[str, Any]]
    if isinstance(specs, Mapping):
        items = list(specs.items())
    else:
        items = []
        for spec in specs:
            m = _PART.match(str(spec))
            if m is None:
                raise InputError(f"--part {spec!r} is not of the form {PART_FORM}")
            items.append((m.group(1), f"{m.group(2)}:{m.group(3)}"))
    for name, value in items:
        name = str(name)
        if not name or "." in name:
            raise InputError(f"part name {name!r} must be non-empty and hold no dots ({PART_FORM})")
        if name in out:
            raise InputError(f"part {name!r} is given twice; give each part once")
        if isinstance(value, str):
            det, _, cols_text = value.partition(":")
            cols = [c.strip() for c in cols_text.split(",") if c.strip()]
        elif isinstance(value, Mapping) and {"detector", "columns"} <= set(value):
            det = str(value["detector"])
            raw = value["columns"]
            cols = [str(raw)] if isinstance(raw, str) else [str(c) for c in raw]
        else:
            raise InputError(
                f"part {name!r}: give 'DETECTOR:COL,COL' or {{detector: NAME, columns: [COL, ...]}}; got {value!r}"
            )
        det = det.strip()
        if det not in detector_names():
            raise InputError(f"part {name!r}: unknown detector {det!r}; see `anomalia models`")
        kind = get_detector(det).input_kind
        if kind not in ("table", "text"):
            raise InputError(
                f"part {name!r}: {det!r} reads {kind}; a part of a table file is numbers (a table detector such as "
                "autoencoder) or one text column (text, text-lm)"
            )
        if not cols:
            raise InputError(f"part {name!r} names no columns ({PART_FORM})")
        if kind == "text" and len(cols) != 1:
            raise InputError(f"part {name!r}: a text part reads one column; got {cols}")
        out[name] = (det, cols)
    if not out:
        raise InputError(f"a multimodal fit needs its parts: --part {PART_FORM} (repeatable)")
    return out


def check_multimodal_flags(opts: Mapping[str, Any], **flags: Any) -> None:
    """Refuse the ``fit`` options that have no meaning for records with several parts (one line naming them)."""
    if opts.get("model") not in (None, "multimodal"):
        raise InputError(f"--part fits a multimodal model; leave out --model {opts['model']} (or give multimodal)")
    keys = ("contaminated", "impute", "max_categories", "drop", "time_column", "image_size", "text_column")
    bad = [k for k in keys if opts.get(k)] + [k for k, v in flags.items() if v]
    if bad:
        names = ", ".join("--" + k.replace("_", "-") for k in bad)
        raise InputError(f"{names} does not apply to a multimodal fit; each --part names its detector and columns")


def _split_params(params: Iterable[str] | Mapping[str, Any] | None, parts: Sequence[str]) -> tuple[dict, dict]:
    """``--set`` entries for the multimodal detector and, keyed by part, for each part's detector."""
    if params is None:
        return {}, {}
    items = list(params.items()) if isinstance(params, Mapping) else []
    if not isinstance(params, Mapping):
        for entry in params:
            key, sep, value = str(entry).partition("=")
            if not sep:
                raise ParameterError(f"--set {entry!r} must be key=value")
            items.append((key.strip(), value))
    own: list[str] | dict[str, Any] = [] if not isinstance(params, Mapping) else {}
    per_part: dict[str, Any] = {}
    for key, value in items:
        head, dot, rest = key.partition(".")
        if dot:
            if head not in parts:
                raise ParameterError(f"--set {key}: no part named {head!r}; the parts are {list(parts)}")
            bucket = per_part.setdefault(head, [] if not isinstance(params, Mapping) else {})
        else:
            head, rest, bucket = "", key, own
        if isinstance(bucket, list):
            bucket.append(f"{rest}={value}")
        else:
            bucket[rest] = value
    return own, per_part  # type: ignore[return-value]


def fit_multimodal_file(
    data: str | Path,
    *,
    parts: Iterable[str] | Mapping[str, Any],
    out: str | Path,
    params: Iterable[str] | Mapping[str, Any] | None = None,
    label_column: str | None = None,
    threshold: str | None = None,
    seed: int | None = 0,
) -> FitResult:
    """Fit a multimodal detector on the table ``data``, one part per ``parts`` entry, and save it to ``out``.

    With ``label_column``, rows labelled 1 (anomaly) are kept out of training.
    """
    start = time.perf_counter()
    spec = parse_parts(parts)
    own, per_part = _split_params(params, list(spec))
    detectors = {}
    for name, (det_name, _) in spec.items():
        kwargs = parse_params(det_name, per_part.get(name))
        if "threshold" in kwargs:
            raise ParameterError(f"--set {name}.threshold: a part has no threshold of its own; use --threshold")
        detectors[name] = make_detector(det_name, **kwargs)
    columns = {name: cols[0] if get_detector(d).input_kind == "text" else cols for name, (d, cols) in spec.items()}
    own_kwargs = parse_params("multimodal", own)
    for key in ("parts", "columns"):
        if key in own_kwargs:
            raise ParameterError(f"--set {key}: give the parts with --part {PART_FORM}")
    detector = make_fit_detector("multimodal", own, threshold=threshold, seed=seed)
    detector.set_params(parts=detectors, columns=columns)
    if detector.threshold_rule().needs_labels:
        raise InputError("multimodal models are fitted with a false-alarm threshold; use --threshold false-alarm:ALPHA")
    needed = list(dict.fromkeys(c for _, cols in spec.values() for c in cols))
    frame = _read(data, needed, [label_column] if label_column else [])
    n_excluded = 0
    if label_column is not None:
        labels = as_labels(frame[label_column], label_column)
        n_excluded = int(labels.sum())
        frame = frame[np.asarray(labels) == 0].reset_index(drop=True)
        if frame.empty:
            raise InputError(f"{data}: every row is labelled as an anomaly in {label_column!r}; fit needs normal rows")
    detector.fit(frame)
    fitted = Model(detector, name=Path(out).name)
    fitted.save(out)
    return FitResult.of(
        fitted, data=data, n_rows=len(frame), seconds=time.perf_counter() - start, n_excluded_anomalies=n_excluded
    )


def _read(data: str | Path, columns: Sequence[str], extra: Sequence[str]) -> Any:
    """The ``columns`` (and ``extra``) of the table ``data`` as a DataFrame; a missing column is named."""
    from ..data import table_columns

    have = table_columns(data)
    wanted = list(dict.fromkeys([*columns, *extra]))
    missing = [c for c in wanted if c not in have]
    if missing:
        raise InputError(f"{data} has no column(s) {missing}; its columns are {list(have)[:12]}")
    return read_table(data, columns=wanted).to_pandas()


def score_multimodal_file(
    model: str | Path | Model,
    data: str | Path,
    out: str | Path,
    *,
    keep: Sequence[str] = (),
) -> ScoreResult:
    """Score every record of the table ``data`` and write ``out`` (.parquet or .csv): ``row``, the ``keep``
    columns, ``score``, ``p_value``, ``is_anomaly`` and the parts ranked by their share of the fused score."""
    start = time.perf_counter()
    m = model if isinstance(model, Model) else Model.load(model)
    if m.input_kind != "multimodal":
        raise InputError(f"{model} holds a {m.detector.name} model, not a multimodal one")
    det: Any = m.detector
    needed = [c for cols in det.columns.values() for c in ([cols] if isinstance(cols, str) else cols)]
    table_format(out)
    frame = _read(data, needed, keep)
    rows = m.score(frame)
    if keep:
        import pyarrow as pa

        rows = rows.with_columns({c: pa.array(frame[c]) for c in keep})
    writer = Writer(Path(out))
    ok = False
    try:
        writer.write(rows.to_arrow(len(det.parts_)))
        ok = True
    finally:
        writer.close(ok)
    columns = ["row", *keep, "score", "p_value", "is_anomaly"]
    return ScoreResult(
        str(data), Path(out), len(frame), rows.n_flagged, time.perf_counter() - start,
        det.fitted_threshold().spec, columns, kind="multimodal",
    )  # fmt: skip


__all__ = ["check_multimodal_flags", "fit_multimodal_file", "parse_parts", "score_multimodal_file"]
