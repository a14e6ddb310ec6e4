""":class:`OnnxModel`: an exported graph and its manifest, scoring like :class:`~anomalia.model.Model`.

The input goes through the same Python preprocessing as the model folder's (the table encoder, the series
checks and windows, the image layout), the graph runs in onnxruntime, and the scores get their p-values
from the saved calibration scores and their decisions from the saved threshold. The graph computes scores
only, so the rows it scores carry no per-feature explanations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .. import bundle
from .._core import BundleError, InputError, Schema, as_float_array, check_finite, check_schema
from .._core.images import as_image_array, check_image_shape
from .._core.optional import require
from ..data import ImageReading, TabularEncoder, as_arrow
from ..data.windows import WARMUP_SCORE, per_step, sliding_windows
from ..results import ScoredRows
from ..scoring import Calibrator, Threshold
from .onnx import INPUT_NAME, MANIFEST_FORMAT, MANIFEST_VERSION, OUTPUT_NAME, _session, find_export, manifest_path

#: Values (rows x features, windows x steps x channels, pixels) per onnxruntime call.
BATCH_VALUES = 1 << 21


class OnnxModel:
    """An ONNX export (``anomalia export``) loaded for scoring with onnxruntime.

    Parameters
    ----------
    path : path
        The ``.onnx`` file, or a model folder holding its export (``MODEL/model.onnx``); the manifest
        ``<file>.json`` must be beside it.
    threads : int, optional
        onnxruntime's intra-op threads (its default: all cores).

    Attributes
    ----------
    manifest : dict
        The export's manifest: model name and version, input shape, preprocessing, calibration, threshold.
    calibrator : Calibrator
        The held-out normal scores of the model (conformal p-values).
    threshold : Threshold
        The model's fitted decision rule.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        require("onnxruntime", "onnx", purpose="scoring with --runtime onnx")
        folder = Path(path) if Path(path).is_dir() else None
        self.path = find_export(path)
        self.manifest = _read_manifest(self.path)
        if folder is not None and (folder / bundle.MANIFEST).exists():
            have = str(bundle.read_manifest(folder).get("version", ""))
            if have != self.manifest["model"].get("version"):
                raise BundleError(
                    f"the ONNX export in {folder} was made from model version {self.manifest['model'].get('version')} "
                    f"but the folder now holds version {have}; export again (anomalia export {folder} --format onnx)"
                )
        if bundle.sha256(self.path) != self.manifest["onnx"]["sha256"]:
            raise BundleError(f"{self.path} does not match the checksum in its manifest; export the model again")
        self.session = _session(self.path, threads)
        try:
            self.schema = Schema.from_dict(self.manifest["schema"])
            self.calibrator = Calibrator.from_dict(self.manifest["calibration"])
            self.threshold = Threshold.from_dict(self.manifest["threshold"])
            self.input_shape = list(self.manifest["onnx"]["input"]["shape"])
            self.preprocess = _preprocess(self.manifest.get("preprocess"))
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"the manifest {manifest_path(self.path)} is damaged ({exc}); export again") from None

    # ------------------------------------------------------------------ what it reads
    @property
    def name(self) -> str:
        return str(self.manifest["model"]["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["model"]["version"])

    @property
    def input_kind(self) -> str:
        return str(self.manifest["model"]["input_kind"])

    @property
    def encoder(self) -> TabularEncoder:
        """The table encoding saved with the model (pass-through of named columns without one)."""
        if isinstance(self.preprocess, TabularEncoder):
            return self.preprocess
        if self.input_kind != "table" or not self.schema.columns:
            raise BundleError(
                f"the export of {self.name!r} has no table encoding (fitted on "
                f"{'an unnamed array' if not self.schema.columns else self.input_kind}), so it cannot read files"
            )
        return TabularEncoder.pass_through(self.schema.columns)

    @property
    def input_columns(self) -> list[str]:
        if self.input_kind == "series":
            return list(self.schema.columns or [str(i) for i in range(self.schema.n_features)])
        return self.encoder.input_columns

    @property
    def image_reading(self) -> ImageReading:
        if isinstance(self.preprocess, ImageReading):
            return self.preprocess
        c, h, w = self.manifest["images"]["image_shape"]
        return ImageReading((h, w), "L" if c == 1 else "RGB")

    def encode(self, data: Any, *, row_offset: int = 0) -> np.ndarray:
        """Records as the graph's float32 input, with the model's own encoder."""
        return self.encoder.transform(as_arrow(data), row_offset=row_offset)

    # ------------------------------------------------------------------ the graph
    def run(self, x: np.ndarray) -> np.ndarray:
        """The graph on prepared input (``input_shape`` with any batch), in chunks; float64 scores."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        expected = self.input_shape[1:]
        if list(x.shape[1:]) != expected:
            raise InputError(f"the ONNX graph takes input of shape {['batch', *expected]}; got {list(x.shape)}")
        per_row = max(1, int(np.prod(expected)))
        step = max(1, BATCH_VALUES // per_row)
        out = [self.session.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + step]})[0] for i in range(0, x.shape[0], step)]
        if not out:
            return np.zeros(0, np.float64)
        return np.concatenate(out).astype(np.float64)

    def anomaly_score(self, X: Any) -> np.ndarray:
        """Scores as the model's detector gives them (per row, per time step or per image), float64."""
        return self._scores(X)[0]

    def p_value(self, X: Any) -> np.ndarray:
        return self.calibrator.p_values(self.anomaly_score(X))

    def is_anomaly(self, X: Any) -> np.ndarray:
        return self.threshold.predict(self.anomaly_score(X))

    def _scores(self, X: Any, *, encoded: bool = False, row_offset: int = 0) -> tuple[np.ndarray, Any, str]:
        """(scores, time stamps or None, time name)."""
        if self.input_kind == "series":
            return self._series_scores(X)
        if self.input_kind == "images":
            arr = self._images(X)
            return self.run(arr), None, "time"
        if encoded:
            arr = np.ascontiguousarray(X, dtype=np.float32)
        elif isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
            arr, schema = as_float_array(X, check_finite_values=False)
            check_schema(schema, self.schema)
        else:
            arr = self.encode(X, row_offset=row_offset)
        scores = self.run(arr)
        if not np.isfinite(scores).all():
            check_finite(arr, columns=self.schema.columns)
        return scores, None, "time"

    def _images(self, X: Any) -> np.ndarray:
        info = self.manifest["images"]
        layout = info["layout"]
        if layout == "auto" and np.ndim(X) == (3 if info["fitted_layout"] == "nhw" else 4):
            layout = info["fitted_layout"]
        arr = as_image_array(X, layout=layout)[0]
        size = info.get("image_size")
        if size is not None and tuple(arr.shape[-2:]) != tuple(size):
            import torch

            from ..nn import resize

            arr = resize(torch.from_numpy(arr), tuple(size)).numpy()  # the detector's own resize
        check_image_shape(arr.shape[1:], tuple(info["image_shape"]))
        return arr

    def _series_scores(self, X: Any) -> tuple[np.ndarray, Any, str]:
        import pandas as pd

        from ..data.series import check_step, prepare_series
        from ..data.timestamps import TimeParsing
        from ..scoring.smoothing import ewma

        info = self.manifest["series"]
        time_column = info["time_column"]
        time, time_name = None, time_column or "time"
        frame = X
        if hasattr(X, "schema") and hasattr(X, "num_rows"):  # pyarrow
            frame = X.to_pandas()
        if hasattr(frame, "columns") and hasattr(frame, "dtypes"):
            if self.schema.columns:  # only the fitted channels (and the time column), as Model does
                missing = [c for c in self.schema.columns if c not in frame.columns]
                if missing:
                    raise InputError(f"the series lacks the channel column(s) {missing[:5]} the model was fitted on")
                frame = frame[[c for c in [time_column, *self.schema.columns] if c is not None]]
            if time_column is not None and time_column in frame.columns:
                time = np.asarray(frame[time_column])
            elif hasattr(frame.index, "tz_localize"):
                time = np.asarray(frame.index)
        parsing = TimeParsing.from_dict(info["time_parsing"]) if info.get("time_parsing") else None
        if parsing is None and "time_parsing" not in info and time_column is not None:
            parsing = TimeParsing.from_dict(None)  # exported before the parsing was kept: as pandas reads it
        s = prepare_series(
            frame, time_column=time_column, resample=info["resample"], fill=info["fill"], parsing=parsing
        )
        check_schema(s.schema, self.schema)
        check_step(s, None if info["step"] is None else pd.Timedelta(info["step"]))
        span, n = int(info["span"]), s.values.shape[0]
        raw = np.full(n, WARMUP_SCORE) if n < span else per_step(self.run(sliding_windows(s.values, span)), n, span)
        smoothing = int(info["smoothing"])
        if smoothing > 1 and span - 1 < raw.size:
            raw = raw.copy()
            raw[span - 1 :] = ewma(raw[span - 1 :], smoothing)
        return s.to_rows(raw), time, time_name

    # ------------------------------------------------------------------ scoring
    def score(self, data: Any, *, row_offset: int = 0, encoded: bool = False, **_: Any) -> ScoredRows:
        """Score ``data`` as :meth:`anomalia.model.Model.score` does: records, a series or images (an array
        or image paths) in, :class:`~anomalia.results.ScoredRows` (scores, p-values, decisions) out.

        Explanation options of ``Model.score`` are accepted and ignored: the graph computes scores only.
        """
        paths = None
        if self.input_kind == "images" and isinstance(data, list | tuple) and data and isinstance(data[0], str | Path):
            paths = [str(p) for p in data]
            data = self.image_reading.read(paths)
        scores, time, time_name = self._scores(data, encoded=encoded, row_offset=row_offset)
        return ScoredRows(
            score=scores,
            p_value=self.calibrator.p_values(scores),
            is_anomaly=self.threshold.predict(scores),
            row=None if paths is not None else np.arange(row_offset, row_offset + scores.size, dtype=np.int64),
            time=time,
            time_name=time_name,
            model_name=self.name,
            model_version=self.version,
            paths=paths,
        )


def _read_manifest(path: Path) -> dict[str, Any]:
    mpath = manifest_path(path)
    if not mpath.exists():
        raise BundleError(f"{path} has no manifest beside it ({mpath.name}); export it with `anomalia export`")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read {mpath}: {exc}; export the model again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise BundleError(f"{mpath} is not an anomalia ONNX manifest; export the model again")
    if manifest.get("format_version") != MANIFEST_VERSION:
        raise BundleError(
            f"{mpath} has format version {manifest.get('format_version')!r}; this anomalia reads {MANIFEST_VERSION}"
        )
    return manifest


def _preprocess(section: Any) -> TabularEncoder | ImageReading | None:
    if section is None:
        return None
    if section.get("kind") == "table":
        return TabularEncoder.from_dict(section["encoder"])
    if section.get("kind") == "images":
        return ImageReading.from_dict(section)
    raise ValueError(f"unknown preprocessing {section.get('kind')!r}")
