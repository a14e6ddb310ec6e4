"""Dense (fully connected) networks on records: the autoencoder and the variational autoencoder.

Pure modules: no I/O, no training loop, no preprocessing. Inputs are already standardised.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn


def mlp(sizes: Sequence[int], *, dropout: float = 0.0, last_activation: bool = False) -> nn.Sequential:
    """Linear layers with ReLU between them (and after the last one when ``last_activation``)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class DenseAutoEncoder(nn.Module):
    """``n_features -> hidden[0] -> ... -> hidden[-1] (code) -> ... -> n_features``."""

    def __init__(self, n_features: int, hidden: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        sizes = [n_features, *hidden]
        self.encoder = mlp(sizes, dropout=dropout, last_activation=True)
        self.decoder = mlp(sizes[::-1], dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class DenseVAE(nn.Module):
    """Gaussian VAE with a learned per-feature output variance, so its loss is a proper likelihood.

    ``hidden`` are the encoder's hidden sizes (mirrored in the decoder); ``latent`` the code size.
    """

    def __init__(self, n_features: int, hidden: Sequence[int], latent: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = mlp([n_features, *hidden], dropout=dropout, last_activation=True)
        self.mu = nn.Linear(hidden[-1], latent)
        self.logvar = nn.Linear(hidden[-1], latent)
        self.decoder = mlp([latent, *hidden[::-1], n_features], dropout=dropout)
        self.out_logvar = nn.Parameter(torch.zeros(n_features))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.mu(h), self.logvar(h).clamp(-10.0, 10.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction at the posterior mean, and the posterior (mu, logvar)."""
        mu, logvar = self.encode(x)
        return self.decoder(mu), mu, logvar

    def feature_nll(self, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        """Per-feature Gaussian negative log-likelihood of ``x`` under the decoder, shape (batch, features)."""
        lv = self.out_logvar.clamp(-8.0, 8.0)
        return 0.5 * ((x - recon) ** 2 * torch.exp(-lv) + lv + math.log(2 * math.pi))

    @staticmethod
    def kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per row."""
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)

    def negative_elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-row negative ELBO; one reparameterised sample when ``generator`` is given, else the mean."""
        mu, logvar = self.encode(x)
        z = mu
        if generator is not None:
            eps = torch.randn(mu.shape, generator=generator, device="cpu").to(mu.device)
            z = mu + eps * torch.exp(0.5 * logvar)
        recon = self.decoder(z)
        return self.feature_nll(x, recon).sum(dim=1) + self.kl(mu, logvar)
