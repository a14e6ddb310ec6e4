"""Deploy a model outside anomalia's torch code: its scoring graph as ONNX, with the manifest that makes
p-values and decisions match (:func:`export_onnx`), and :class:`OnnxModel`, which scores an export with
onnxruntime as :class:`anomalia.model.Model` scores the folder. Needs the extra ``anomalia[onnx]``."""

from .onnx import DEFAULT_NAME, FORMATS, NOT_EXPORTABLE, PARITY_RTOL, ExportResult, check_exportable, export_onnx
from .runtime import OnnxModel

__all__ = [
    "DEFAULT_NAME",
    "FORMATS",
    "NOT_EXPORTABLE",
    "PARITY_RTOL",
    "ExportResult",
    "OnnxModel",
    "check_exportable",
    "export_onnx",
]
