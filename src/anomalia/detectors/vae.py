"""Variational autoencoder: the anomaly score is the negative log-likelihood bound of the record."""

from __future__ import annotations

from dataclasses import KW_ONLY
from numbers import Integral

import numpy as np
import torch
from torch import nn

from .._core import ParameterError, RandomState, check_is_fitted, check_random_state, child_seed
from .._core.params import int_tuple, interval
from ..nn import DenseVAE
from .deep import DEEP_RULES, DeepDetector
from .registry import register


@register("vae")
class VAE(DeepDetector):
    """Gaussian VAE; score = negative ELBO of the standardised record, ``-log p(x)`` up to the KL gap.

    Training draws one reparameterised sample per row; scoring evaluates the bound at the posterior mean,
    so a row's score is deterministic and does not depend on the batch it is scored in. The decoder learns
    a variance per feature, so the score weighs each feature by how predictable it is in normal data.

    Parameters are those of :class:`~anomalia.AutoEncoder` (``hidden`` defaults to (128, 64)), plus
    ``latent`` (size of the code).
    """

    parameter_rules = {**DEEP_RULES, "hidden": [int_tuple()], "latent": [interval(1, None, integer=True)]}
    nonfinite_propagates = True
    test_params = {"hidden": (8,), "latent": 2, "epochs": 3, "batch_size": 64}

    hidden: tuple[int, ...] = (128, 64)
    latent: int = 8
    _: KW_ONLY
    dropout: float = 0.0

    def _build(self, n_features: int) -> nn.Module:
        return DenseVAE(n_features, tuple(self.hidden), self.latent, self.dropout)

    def _row_loss(self, net: nn.Module, xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return net.negative_elbo(xb, gen) / xb.shape[1]

    def _row_score(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return net.negative_elbo(xb)

    def _row_feature_scores(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return self._row_parts(net, xb)[1]

    def _row_expected(self, net: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        return net.decoder(net.encode(xb)[0])

    def _row_parts(self, net: nn.Module, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = net.encode(xb)
        recon = net.decoder(mu)
        score = net.feature_nll(xb, recon).sum(dim=1) + net.kl(mu, logvar)
        return score, (xb - recon).pow(2) * torch.exp(-net.out_logvar.clamp(-8.0, 8.0))

    def sample(self, n: int, *, random_state: RandomState = None, noise: bool = True) -> np.ndarray:
        """Draw ``n`` new rows from the fitted generative model, in the detector's input space.

        A code is drawn from the prior N(0, I), decoded, and (with ``noise``) the decoder's learned per-feature
        Gaussian noise is added; the rows are then put back on the scale of the training data. This is the
        model's idea of normal data, not a copy of it: check it (``anomaly_score`` of the samples) before
        training on it.

        Parameters
        ----------
        n : int
            Rows to draw (at least 1).
        random_state : int, Generator or None
            Seed of the draws; same seed, same rows.
        noise : bool
            Add the decoder's per-feature noise (a draw from p(x | z)); False gives the decoded means.

        Returns
        -------
        ndarray of shape (n, n_features_in_), float32
        """
        check_is_fitted(self)
        if not isinstance(n, Integral) or isinstance(n, bool) or n < 1:
            raise ParameterError(f"n must be a positive integer (rows to draw); got {n!r}")
        gen = torch.Generator().manual_seed(child_seed(check_random_state(random_state)))
        net, dev = self.net_, self.device_
        with torch.inference_mode():
            z = torch.randn((int(n), int(self.latent)), generator=gen)
            x = net.decoder(z.to(dev)).cpu()
            if noise:
                std = torch.exp(0.5 * net.out_logvar.clamp(-8.0, 8.0)).cpu()
                x = x + torch.randn(x.shape, generator=gen) * std
        return (x.numpy() * self.scaler_.scale + self.scaler_.mean).astype(np.float32)
