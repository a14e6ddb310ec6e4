"""The dense AutoEncoder and VAE on sliding windows: each window of ``window`` steps x channels is one flat
record, through the same windowing code as the other series detectors."""

from __future__ import annotations

import torch
from torch import nn

from .._core.params import int_tuple, interval
from ..nn import DenseAutoEncoder, DenseVAE
from .registry import register
from .series import SERIES_RULES, SeriesDetector


@register("window-autoencoder")
class WindowAutoEncoder(SeriesDetector):
    """Dense autoencoder on flattened windows; score of step t = mean squared reconstruction error of the
    window ending at t (standardised units).

    Parameters
    ----------
    window : int
        Steps per window.
    hidden : tuple of int
        Encoder layer sizes (the last is the code); the decoder mirrors them.

    Other parameters as :class:`~anomalia.LSTMForecaster`.
    """

    parameter_rules = {**SERIES_RULES, "hidden": [int_tuple()]}
    test_params = {"window": 8, "hidden": (8, 4), "epochs": 2, "batch_size": 64}

    hidden: tuple[int, ...] = (64, 16)

    def _build(self, n_features: int) -> nn.Module:
        return DenseAutoEncoder(n_features * self.window, tuple(self.hidden), self.dropout)

    def _sample_errors(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        flat = wb.reshape(wb.shape[0], -1)
        return (net(flat) - flat).pow(2).reshape(wb.shape).mean(dim=1)

    def _sample_expected(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        return net(wb.reshape(wb.shape[0], -1)).reshape(wb.shape)[:, -1]


@register("window-vae")
class WindowVAE(SeriesDetector):
    """Gaussian VAE on flattened windows; score of step t = negative ELBO of the window ending at t, divided by
    the window's length. Channel shares of ``explain`` are the variance-weighted squared errors.

    Parameters
    ----------
    window : int
        Steps per window.
    hidden : tuple of int
        Encoder hidden sizes (mirrored in the decoder).
    latent : int
        Size of the code.

    Other parameters as :class:`~anomalia.LSTMForecaster`.
    """

    parameter_rules = {**SERIES_RULES, "hidden": [int_tuple()], "latent": [interval(1, None, integer=True)]}
    test_params = {"window": 8, "hidden": (8,), "latent": 2, "epochs": 2, "batch_size": 64}

    hidden: tuple[int, ...] = (64,)
    latent: int = 8

    def _build(self, n_features: int) -> nn.Module:
        return DenseVAE(n_features * self.window, tuple(self.hidden), self.latent, self.dropout)

    def _sample_loss(self, net: nn.Module, wb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        flat = wb.reshape(wb.shape[0], -1)
        return net.negative_elbo(flat, gen) / flat.shape[1]

    def _sample_score(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        return net.negative_elbo(wb.reshape(wb.shape[0], -1)) / wb.shape[1]

    def _sample_errors(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        return self._sample_parts(net, wb)[1]

    def _sample_parts(self, net: nn.Module, wb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = wb.reshape(wb.shape[0], -1)
        mu, logvar = net.encode(flat)
        recon = net.decoder(mu)
        score = (net.feature_nll(flat, recon).sum(dim=1) + net.kl(mu, logvar)) / wb.shape[1]
        weighted = (flat - recon).pow(2) * torch.exp(-net.out_logvar.clamp(-8.0, 8.0))
        return score, weighted.reshape(wb.shape).mean(dim=1)

    def _sample_expected(self, net: nn.Module, wb: torch.Tensor) -> torch.Tensor:
        flat = wb.reshape(wb.shape[0], -1)
        return net.decoder(net.encode(flat)[0]).reshape(wb.shape)[:, -1]
