"""Checks of a run's arguments made before any work: an output that cannot be written, a kept column that
would be lost, a count that is not positive. The command line (and the service) call them first, so a bad
flag never costs a training run."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._core import InputError
from ..bundle import OWN_FILES

log = logging.getLogger(__name__)

#: The columns every score output has; a ``--keep`` column of the same name would be overwritten.
OUTPUT_COLUMNS = ("row", "path", "score", "p_value", "is_anomaly")
#: Prefixes of the explanation columns of a score output.
OUTPUT_PREFIXES = (
    "top_feature_",
    "top_share_",
    "top_observed_",
    "top_expected_",
    "top_normal_low_",
    "top_normal_high_",
)
#: Output suffixes ``anomalia score`` writes.
OUTPUT_SUFFIXES = (".csv", ".parquet")


def merge_params(base: Any, pairs: Iterable[str]) -> dict[str, Any]:
    """A run file's ``set:`` block (a mapping or ``key=value`` strings) with ``--set`` pairs on top, key by
    key: a flag replaces only the key it names."""
    merged: dict[str, Any] = {}
    if isinstance(base, Mapping):
        merged.update({str(k).replace("-", "_"): v for k, v in base.items()})
    elif isinstance(base, str | bytes):
        raise InputError("the run file's 'set:' must be a mapping (key: value) or a list of key=value")
    else:
        base_pairs = list(base)
        for pair in base_pairs:
            key, sep, value = str(pair).partition("=")
            if not sep:
                raise InputError(f"the run file's 'set:' entry {pair!r} is not key=value")
            merged[key.strip().replace("-", "_")] = value.strip()
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set takes key=value (e.g. --set epochs=50); got {pair!r}")
        merged[key.strip().replace("-", "_")] = value.strip()
    return merged


def check_fit_out(out: str | Path) -> None:
    """Refuse a model folder that cannot be written (a file, or a folder holding other files) before training;
    say when an existing model is going to be replaced."""
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise InputError(f"cannot save the model to {target}: it is a file; give a folder path (--out)")
    if target.is_dir():
        other = sorted(p.name for p in target.iterdir() if p.name not in OWN_FILES)
        if other:
            raise InputError(
                f"cannot save a model to {target}: the folder holds other files ({', '.join(other[:5])}); "
                "give a new or empty folder, or a model folder to replace (--out)"
            )
        if any(target.iterdir()):
            log.warning("%s holds a model: it will be replaced by this fit", target)
    _check_parent(target)


def _check_parent(target: Path) -> None:
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot write {target}: {parent} is a file, not a folder")


def check_score_args(
    out: str | Path, *, keep: Sequence[str] = (), batch_rows: int = 1, top_k: int = 1, data: str | Path | None = None
) -> None:
    """The checks of ``anomalia score``'s flags, before the model is loaded."""
    target = Path(out)
    if data is not None and target.exists() and Path(data).exists() and target.resolve() == Path(data).resolve():
        raise InputError(f"--out {target} is the file being scored: it would be overwritten; give another output file")
    if target.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(
            f"cannot write {target}: unknown file type {target.suffix or '(no suffix)'!r}; use a .csv or "
            ".parquet file (--out)"
        )
    if target.is_dir():
        raise InputError(f"cannot write {target}: it is a folder; give a file path (--out)")
    if not target.parent.exists():
        raise InputError(f"cannot write {target}: the folder {target.parent} does not exist")
    for name in keep:
        if name in OUTPUT_COLUMNS or name.startswith(OUTPUT_PREFIXES):
            raise InputError(
                f"--keep {name!r} is a column the output has already ({', '.join(OUTPUT_COLUMNS)}, top_*): it "
                "would be lost; rename it in the input or leave it out"
            )
    if batch_rows < 1:
        raise InputError(f"--batch-rows must be at least 1; got {batch_rows}")
    if top_k < 0:
        raise InputError(f"--top-k must be 0 or more; got {top_k}")
    if target.exists():
        log.warning("%s exists: it will be replaced", target)


def evaluation_json(ev: Any) -> str:
    """``anomalia evaluate --json``: the metrics and operating points of an evaluation as one JSON object."""
    import json
    import math

    def clean(v: Any) -> Any:
        if isinstance(v, float):
            return None if math.isnan(v) or math.isinf(v) else v
        if hasattr(v, "item"):
            return clean(v.item())
        return v

    return json.dumps(
        {
            "detector": ev.detector,
            "data": ev.data,
            "threshold": ev.threshold,
            "threshold_value": clean(float(ev.threshold_value)),
            "metrics": {k: clean(v) for k, v in ev.metrics.items()},
            "operating_points": [
                {
                    "name": op.name,
                    "threshold": clean(op.threshold),
                    "flagged": int(op.flagged),
                    "precision": clean(op.precision),
                    "recall": clean(op.recall),
                    "f1": clean(op.f1),
                    "note": op.note,
                }
                for op in ev.operating_points
            ],
        },
        indent=1,
    )


#: Python advice in the messages of the series and image checks -> the command-line flag that does the same.
_CLI_ADVICE = (
    (re.compile(r"sort it first \(X\.sort_index\(\) or X\.sort_values\(time_column\)\)"),
     "sort the file by its time column first"),
    (re.compile(r"drop them \(X\[~X\.index\.duplicated\(\)\]\) or pass resample='<step>' \(e\.g\. '5min'\)"),
     "drop them in the file or pass --set resample=STEP (e.g. --set resample=5min)"),
    (re.compile(r"resample='([^']+)'"), r"--set resample=\1"),
    (re.compile(r"fill='(\w+)'"), r"--set fill=\1"),
    (re.compile(r"fill=\.\.\."), "--set fill=..."),
    (re.compile(r"pass size=\(height, width\)"), "pass --image-size HEIGHTxWIDTH"),
    (re.compile(r"then filled as `fill` says"), "then filled as --set fill=... says"),
    (re.compile(r"date_format='([^']*)'"), r"--date-format '\1'"),
    (re.compile(r"dayfirst=True"), "--dayfirst"),
    (re.compile(r"time_unit='s', 'ms', 'us' or 'ns'"), "--time-unit s, ms, us or ns"),
    (re.compile(r"time_unit='(\w+)'"), r"--time-unit \1"),
    (re.compile(r"time_unit='\.\.\.'"), "--time-unit UNIT"),
    (re.compile(r"leave time_unit out"), "leave --time-unit out"),
)


def cli_words(text: str) -> str:
    """``text`` with its Python advice (``resample='5min'``, ``dayfirst=True``) turned into command-line flags."""
    for pattern, repl in _CLI_ADVICE:
        text = pattern.sub(repl, text)
    return text


def with_cli_advice(exc: InputError, data: str | Path) -> InputError:
    """``exc`` with its Python advice turned into command-line flags and the input named by its file."""
    text = cli_words(str(exc))
    text = re.sub(r"^(X|X_new)\b", lambda _: str(data), text)
    text = re.sub(r"\bof (X|X_new)\b", lambda _: f"of {data}", text)
    return type(exc)(text)
