"""Float64 scoring of a DeepAnT forecaster, written with operations that onnxruntime also runs in float64.

A forecaster's score is the squared error of a prediction that is often almost exact: the difference of two
nearly equal numbers. In float32 the network's prediction carries rounding of a few units in the last place,
which two runtimes (torch's oneDNN convolutions, onnxruntime's MLAS kernels) accumulate in different orders;
the squared error of a near-perfect prediction turns those last-place differences into relative score
differences of 1e-4. Run in float64, the same network gives predictions whose rounding lies ~1e-16 below
the error, so torch and an exported graph agree to float32 rounding on every score.

onnxruntime's CPU convolution, pooling and LSTM kernels take float32 only, so the float64 modules write
each convolution as shifted slices and one matrix product, the max-pooling as a reshape and a maximum, and
the LSTM as its gate equations unrolled over the window. Pure modules: no I/O, no training (each is built
from a trained float32 network).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .sequence import DeepAnTNet, LSTMForecastNet


class _Conv64(nn.Module):
    """Same-padded 1-D convolution on channels-last steps, float64: ``[x shifted by 0..k-1] @ weight + bias``
    (one matrix product over every step of every window)."""

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        w = conv.weight.detach().to(torch.float64)  # (out, in, k)
        self.k, self.pad = int(w.shape[2]), int(conv.padding[0])  # type: ignore[index]
        # row j * in + c of the (k * in, out) matrix is tap j of input channel c
        self.register_buffer("weight", w.permute(2, 1, 0).reshape(-1, w.shape[0]).contiguous())
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(w.shape[0])
        self.register_buffer("bias", bias.to(torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, steps, in) -> (batch, steps, out)
        steps = x.shape[1] + 2 * self.pad - self.k + 1
        xp = F.pad(x, (0, 0, self.pad, self.pad))
        cols = torch.cat([xp[:, j : j + steps] for j in range(self.k)], dim=2)
        return torch.matmul(cols, self.weight) + self.bias


def _pool2(x: torch.Tensor) -> torch.Tensor:
    """``MaxPool1d(2, ceil_mode=True)`` over the steps of (batch, steps, channels): an odd last step is its
    own window."""
    if x.shape[1] % 2:
        x = F.pad(x, (0, 0, 0, 1), value=float("-inf"))
    return x.unflatten(1, (x.shape[1] // 2, 2)).amax(dim=2)


class DeepAnTFloat64(nn.Module):
    """A float64 copy of a trained :class:`~anomalia.nn.DeepAnTNet` (eval mode: its dropout is off), computed
    channels-last so that each layer is one matrix product.

    ``(batch, window, channels) float64 -> (batch, channels) float64``.
    """

    def __init__(self, net: DeepAnTNet) -> None:
        super().__init__()
        f, h = net.features, net.head
        self.conv1, self.conv2 = _Conv64(f[0]), _Conv64(f[3])  # type: ignore[arg-type]
        filters = self.conv2.bias.shape[0]
        w1 = h[0].weight.detach().to(torch.float64)  # (hidden, filters * steps), filter-major as nn.Flatten gives
        w1 = w1.reshape(w1.shape[0], filters, -1).permute(2, 1, 0).reshape(-1, w1.shape[0])  # step-major rows
        self.register_buffer("w1", w1.contiguous())
        self.register_buffer("b1", h[0].bias.detach().to(torch.float64))
        self.register_buffer("w2", h[3].weight.detach().to(torch.float64).T.contiguous())
        self.register_buffer("b2", h[3].bias.detach().to(torch.float64))
        self.train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = _pool2(torch.relu(self.conv1(x)))
        z = _pool2(torch.relu(self.conv2(z))).flatten(1)
        return torch.matmul(torch.relu(torch.matmul(z, self.w1) + self.b1), self.w2) + self.b2


class LSTMForecastFloat64(nn.Module):
    """A float64 copy of a trained :class:`~anomalia.nn.LSTMForecastNet` (eval mode), the LSTM unrolled over
    the window's steps (the same gate equations as ``torch.nn.LSTM``).

    ``(batch, window, channels) float64 -> (batch, channels) float64``.
    """

    def __init__(self, net: LSTMForecastNet) -> None:
        super().__init__()
        lstm = net.lstm
        self.layers, self.hidden = int(lstm.num_layers), int(lstm.hidden_size)
        for k in range(self.layers):
            w_ih, w_hh = getattr(lstm, f"weight_ih_l{k}"), getattr(lstm, f"weight_hh_l{k}")
            bias = getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")
            self.register_buffer(f"w_ih{k}", w_ih.detach().to(torch.float64).T.contiguous())
            self.register_buffer(f"w_hh{k}", w_hh.detach().to(torch.float64).T.contiguous())
            self.register_buffer(f"b{k}", bias.detach().to(torch.float64))
        self.register_buffer("w_out", net.head.weight.detach().to(torch.float64).T.contiguous())
        self.register_buffer("b_out", net.head.bias.detach().to(torch.float64))
        self.train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H = self.hidden
        seq = x
        for k in range(self.layers):
            w_hh = getattr(self, f"w_hh{k}")
            pre = torch.matmul(seq, getattr(self, f"w_ih{k}")) + getattr(self, f"b{k}")  # every step's input part
            h = c = torch.zeros_like(pre[:, 0, :H])
            outs = []
            for t in range(pre.shape[1]):
                g = torch.addmm(pre[:, t], h, w_hh)  # gates in torch's order: input, forget, cell, output
                s = torch.sigmoid(g)
                c = s[:, H : 2 * H] * c + s[:, :H] * torch.tanh(g[:, 2 * H : 3 * H])
                h = s[:, 3 * H :] * torch.tanh(c)
                outs.append(h)
            seq = torch.stack(outs, dim=1)
        return torch.matmul(seq[:, -1], self.w_out) + self.b_out


class Float32Out(nn.Module):
    """Runs ``module`` and returns its output(s) as float32 (the dtype every scoring graph hands out)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        out = self.module(x)
        if isinstance(out, tuple):
            return tuple(o.to(torch.float32) for o in out)
        return out.to(torch.float32)
