"""Write a model's scoring graph as ONNX, with a manifest that makes p-values and decisions match too.

The graph is the detector's :meth:`~anomalia.detectors.DeepDetector.scoring_module`: standardise -> network
-> one score per row, with a free batch axis. Its input is the float32 array exactly as the detector's
``anomaly_score`` reads it after checking: encoded table rows (batch, features), series windows (batch,
span, channels) or images (batch, C, H, W); its output the (batch,) float32 scores. What happens before
(the table encoding, windows, image layout) and after (per-step placement and smoothing of series scores,
the conformal p-value, the threshold) is described by the manifest written beside the ``.onnx`` file
(``model.onnx.json``): the preprocessing section of the model folder, the input schema, the calibration
scores and the fitted threshold with all its parameters.

The exporter is ``torch.onnx.export(..., dynamo=True)``; where it fails, the TorchScript exporter. Either
way the file is checked before it is kept: onnxruntime must give the detector's own scores (relative
difference at most :data:`PARITY_RTOL`) at batch 1 and at a large batch.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import io
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import bundle
from .._core import BundleError, InputError
from .._core.optional import require
from ..model import Model

log = logging.getLogger(__name__)

#: What ``anomalia export --format`` accepts.
FORMATS = ("onnx",)
MANIFEST_FORMAT = "anomalia-onnx"
MANIFEST_VERSION = 1
#: Name of the export inside a model folder (``anomalia export MODEL/`` writes it there by default).
DEFAULT_NAME = "model.onnx"
#: Largest relative score difference between onnxruntime and torch that an export may have.
PARITY_RTOL = 1e-5
#: Rows of the large batch the export's own check scores.
CHECK_ROWS = 2048
INPUT_NAME, OUTPUT_NAME = "x", "score"

#: Why the detectors that have no torch scoring graph cannot be exported.
NOT_EXPORTABLE = {
    "pca": "its score is a NumPy projection onto principal components, not a torch module",
    "isolation-forest": "its score comes from scikit-learn's trees, which have no torch graph",
}


def manifest_path(onnx_path: str | Path) -> Path:
    """The manifest beside an exported graph: ``model.onnx`` -> ``model.onnx.json``."""
    p = Path(onnx_path)
    return p.with_name(p.name + ".json")


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote and how well the file scores like the model."""

    path: Path
    manifest: Path
    exporter: str
    opset: int
    input_shape: list[Any]
    max_relative_difference: float
    rows_checked: int
    bytes: int


def check_exportable(model: Model) -> None:
    """Raise :class:`InputError` naming the detector and why, when its scoring has no torch graph."""
    from ..detectors import DeepDetector

    det = model.detector
    if det.name in NOT_EXPORTABLE or not isinstance(det, DeepDetector):
        why = NOT_EXPORTABLE.get(det.name, "it has no torch scoring module")
        raise InputError(
            f"detector {det.name!r} cannot be exported to ONNX: {why}. Export a deep detector (autoencoder, vae, "
            "a series or an image detector), or score this one in Python (anomalia score without --runtime onnx)"
        )
    if model.input_kind not in ("table", "series", "images"):
        raise InputError(
            f"detector {det.name!r} reads {model.input_kind} input, which an ONNX graph of float32 arrays cannot "
            "take; score it in Python"
        )


def input_shape(model: Model) -> list[Any]:
    """The graph's input shape, ``"batch"`` first."""
    det = model.detector
    if model.input_kind == "series":
        return ["batch", int(det.span), int(det.n_features_in_)]  # type: ignore[attr-defined]
    if model.input_kind == "images":
        return ["batch", *(int(v) for v in det.image_shape_)]  # type: ignore[attr-defined]
    return ["batch", int(det.n_features_in_)]


def probe_input(model: Model, n: int, seed: int = 0) -> np.ndarray:
    """``n`` float32 inputs of the graph's shape around the typical training values (for checks)."""
    det = model.detector
    rng = np.random.default_rng(seed)
    shape = [n, *input_shape(model)[1:]]
    scaler = det.scaler_  # type: ignore[attr-defined]
    mean, scale = np.asarray(scaler.mean, np.float32), np.asarray(scaler.scale, np.float32)
    if model.input_kind == "images":
        mean, scale = mean.reshape(1, -1, 1, 1), scale.reshape(1, -1, 1, 1)
    x = mean + scale * rng.normal(size=shape).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def _cpu_module(model: Model) -> Any:
    module = model.detector.scoring_module()
    if model.detector.device_.type != "cpu":  # type: ignore[attr-defined]
        module = copy.deepcopy(module).cpu()  # the detector keeps its own network where it is
    return module


def _export(module: Any, example: Any, path: Path, exporter: str, opset: int | None) -> None:
    import torch

    kwargs: dict[str, Any] = {
        "input_names": [INPUT_NAME],
        "output_names": [OUTPUT_NAME],
        "external_data": False,
        "verbose": False,
    }
    if opset is not None:
        kwargs["opset_version"] = opset
    if exporter == "dynamo":
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
    else:
        kwargs["dynamic_axes"] = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    # the exporters print their progress and warn about torch internals; the caller gets a result or an error
    torch_log = logging.getLogger("torch.onnx")
    level = torch_log.level
    torch_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), str(path), dynamo=exporter == "dynamo", **kwargs)
    finally:
        torch_log.setLevel(level)


def _session(path: Path | bytes, threads: int | None = None) -> Any:
    ort = require("onnxruntime", "onnx", purpose="running an ONNX model")
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # no busy-waiting between calls: a spinning pool takes the cores from the reader, writer and torch threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path) if isinstance(path, Path) else path, opts, providers=["CPUExecutionProvider"])


def relative_difference(got: np.ndarray, expected: np.ndarray) -> float:
    """max |got - expected| / max(|expected|, 1e-12) over the rows (0 for no rows)."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    if expected.size == 0:
        return 0.0
    return float(np.max(np.abs(got - expected) / np.maximum(np.abs(expected), 1e-12)))


def _parity(path: Path, module: Any, probe: np.ndarray) -> float:
    import torch

    session = _session(path, threads=1)
    with torch.inference_mode():
        expected = module(torch.from_numpy(probe)).numpy()
    worst = 0.0
    for batch in (probe[:1], probe):
        got = session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        worst = max(worst, relative_difference(got, expected[: batch.shape[0]]))
    return worst


def _manifest(model: Model, path: Path, exporter: str, opset: int, diff: float, rows: int) -> dict[str, Any]:
    det = model.detector
    preprocess: Any = None
    if model.preprocess is not None:
        preprocess = model.preprocess.to_dict()
        if model.input_kind == "table":
            preprocess = {"kind": "table", "encoder": preprocess}
    series = images = None
    if model.input_kind == "series":
        step = getattr(det, "step_", None)
        series = {
            "span": int(det.span),  # type: ignore[attr-defined]
            "smoothing": int(det.smoothing),  # type: ignore[attr-defined]
            "time_column": det.time_column,  # type: ignore[attr-defined]
            "resample": det.resample,  # type: ignore[attr-defined]
            "fill": det.fill,  # type: ignore[attr-defined]
            "step": None if step is None else str(step),
            "time_parsing": None if det.time_parsing_ is None else det.time_parsing_.to_dict(),  # type: ignore[attr-defined]
        }
    if model.input_kind == "images":
        size = det.image_size  # type: ignore[attr-defined]
        images = {
            "image_shape": [int(v) for v in det.image_shape_],  # type: ignore[attr-defined]
            "layout": det.layout,  # type: ignore[attr-defined]
            "fitted_layout": det.layout_,  # type: ignore[attr-defined]
            "image_size": None if size is None else [int(v) for v in size],
        }
    threshold = det.fitted_threshold()
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "anomalia_version": bundle.package_version(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "model": {"name": model.name, "version": model.version, "detector": det.name, "input_kind": model.input_kind},
        "onnx": {
            "file": path.name,
            "sha256": bundle.sha256(path),
            "exporter": exporter,
            "opset": opset,
            "input": {"name": INPUT_NAME, "shape": input_shape(model), "dtype": "float32"},
            "output": {"name": OUTPUT_NAME, "shape": ["batch"], "dtype": "float32"},
        },
        "schema": det.schema_.to_dict(),
        "preprocess": preprocess,
        "series": series,
        "images": images,
        "calibration": det.calibrator_.to_dict(),
        "threshold": threshold.to_dict(),
        "parity": {"max_relative_difference": diff, "rows_checked": rows, "rtol": PARITY_RTOL},
    }


def _opset_of(path: Path) -> int:
    onnx = require("onnx", "onnx", purpose="ONNX export")
    proto = onnx.load(str(path), load_external_data=False)
    return int(next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0))


def export_onnx(
    model: str | Path | Model,
    out: str | Path | None = None,
    *,
    exporter: str = "auto",
    opset: int | None = None,
) -> ExportResult:
    """Export the scoring graph of ``model`` (a folder or a :class:`~anomalia.model.Model`) to ONNX.

    Parameters
    ----------
    model : path or Model
        A fitted model with a deep detector (``check_exportable`` says which are not).
    out : path, optional
        The ``.onnx`` file to write; default ``MODEL/model.onnx``. The manifest goes beside it
        (``model.onnx.json``).
    exporter : {"auto", "dynamo", "torchscript"}
        ``"auto"`` tries the dynamo exporter and falls back to TorchScript when it fails or misses parity.
    opset : int, optional
        ONNX opset (the exporter's default when None).

    Returns
    -------
    ExportResult
        The files, the exporter that made them and the largest relative score difference measured.
    """
    if exporter not in ("auto", "dynamo", "torchscript"):
        raise InputError(f"exporter must be 'auto', 'dynamo' or 'torchscript'; got {exporter!r}")
    m = model if isinstance(model, Model) else Model.load(model)
    check_exportable(m)
    m.detector.fitted_threshold()  # a threshold that still needs labels: no decisions to export
    require("onnx", "onnx", purpose="ONNX export")
    require("onnxruntime", "onnx", purpose="checking an ONNX export")
    if out is None:
        if m.path is None:
            raise InputError("give out=... (the .onnx file to write): this model was not loaded from a folder")
        out = Path(m.path) / DEFAULT_NAME
    path = Path(out)
    if path.suffix != ".onnx":
        raise InputError(f"the ONNX file must end in .onnx; got {path}")
    if not path.parent.exists():
        raise InputError(f"cannot write {path}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder; give a file name like model.onnx")
    import torch

    module = _cpu_module(m)
    probe = probe_input(m, CHECK_ROWS)
    example = torch.from_numpy(probe[:2])
    tmp = path.with_name(path.name + ".partial")
    tried: list[str] = []
    chosen: tuple[str, float] | None = None
    for name in ("dynamo", "torchscript") if exporter == "auto" else (exporter,):
        try:
            _export(module, example, tmp, name, opset)
            diff = _parity(tmp, module, probe)
        except Exception as exc:  # each exporter fails in its own ways; the next one may not
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            tried.append(f"{name}: {first}")
            log.info("the %s ONNX exporter failed on %s: %s", name, m.detector.name, first)
            continue
        if diff <= PARITY_RTOL:
            chosen = (name, diff)
            break
        tried.append(f"{name}: scores differ from torch by {diff:.2g} (relative), more than {PARITY_RTOL:g}")
    if chosen is None:
        tmp.unlink(missing_ok=True)
        raise InputError(f"detector {m.detector.name!r} could not be exported to ONNX ({'; '.join(tried)})")
    os.replace(tmp, path)
    name, diff = chosen
    opset_used = _opset_of(path)
    manifest = _manifest(m, path, name, opset_used, diff, CHECK_ROWS)
    mpath = manifest_path(path)
    mtmp = mpath.with_name(mpath.name + ".partial")
    mtmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(mtmp, mpath)
    return ExportResult(path, mpath, name, opset_used, input_shape(m), diff, CHECK_ROWS, path.stat().st_size)


def find_export(model: str | Path) -> Path:
    """The ``.onnx`` file that ``model`` names: the file itself, or ``MODEL/model.onnx`` in a model folder."""
    p = Path(model)
    if p.is_dir():
        onnx_file = p / DEFAULT_NAME
        if not onnx_file.exists():
            raise BundleError(
                f"{p} holds no ONNX export ({DEFAULT_NAME}); run `anomalia export {p} --format onnx` first"
            )
        return onnx_file
    if not p.exists():
        raise InputError(f"{p} does not exist; give a model folder with an ONNX export or an .onnx file")
    if p.suffix != ".onnx":
        raise InputError(f"{p} is not an .onnx file; give a model folder or the .onnx file `anomalia export` wrote")
    return p
