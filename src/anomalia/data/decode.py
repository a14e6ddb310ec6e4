"""Encoded features back to records: the inverse of :class:`~anomalia.data.TabularEncoder` where one exists.

Numbers come back as they are (booleans as ``value >= 0.5``); a one-hot group becomes the category with the
largest value, so a row generated in feature space (``VAE.sample``) reads as a record of the input columns.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .._core import InputError
from .encoder import TabularEncoder


def decode_features(encoder: TabularEncoder, X: np.ndarray) -> pa.Table:
    """The records (input columns) that the float features ``X`` (n, n_features) encode."""
    X = np.asarray(X)
    names = encoder.feature_names
    if X.ndim != 2 or X.shape[1] != len(names):
        raise InputError(f"decoding needs an array of shape (n, {len(names)}) of encoded features; got {X.shape}")
    cols: dict[str, pa.Array] = {}
    j = 0
    for code in encoder.columns_:
        block = X[:, j : j + code.width]
        if code.kind == "numeric":
            cols[code.name] = pa.array(block[:, 0] >= 0.5) if code.boolean else pa.array(block[:, 0].astype(np.float64))
        else:
            cats = np.asarray(code.categories, dtype=object)
            cols[code.name] = pa.array(cats[np.argmax(block, axis=1)].tolist(), pa.string())
        j += code.width
    return pa.table(cols)
