"""Weight initialisation that keeps deep spiking networks active.

PyTorch's default (uniform, variance 1/(3 fan_in)) lets activity die out layer by layer in a
spiking network: the synapse and membrane filters scale the input fluctuations by their kernels.
:func:`fluctuation_init_` draws zero-mean Gaussian weights whose variance makes the membrane
potential fluctuate with a standard deviation of ``v_std`` thresholds when the presynaptic neurons
fire independently at ``input_rate`` per step:

    Var V = fan_in Var(w) r (1 - r) sum_s h[s]^2,   h = synapse kernel * membrane kernel (leak^s).

With the defaults (r = 0.1, v_std = 2.3) a layer fed at 10 % fires at about 10 % for the paper's
time constants (tau_m 4, tau_s 1): activity neither dies out nor saturates with depth. For other
time constants or input statistics, :func:`calibrate_` scales each layer on a sample batch.
"""

from __future__ import annotations

import math

import torch

from iirsnn.functional.filter import impulse_response
from iirsnn.nn.layer import SpikingLayer


def kernel_energy(layer: SpikingLayer, length: int = 400) -> float:
    """sum_s h[s]^2 of the combined synapse and membrane kernel of ``layer`` (mean over channels)."""
    syn = layer.synapse
    alpha, beta = syn.alpha.detach().double(), syn.beta.detach().double()
    if alpha.dim() == 2:
        alpha, beta = alpha.mean(0), beta.mean(0)
    leak = float(layer.neuron.leak.detach().double().mean())
    h = impulse_response(alpha, beta, length)
    membrane = leak ** torch.arange(length, dtype=torch.float64)
    both = torch.nn.functional.conv1d(h.view(1, 1, -1), membrane.flip(0).view(1, 1, -1), padding=length - 1)
    return float((both.view(-1)[:length] ** 2).sum())


def fluctuation_init_(model: torch.nn.Module, input_rate: float = 0.1, v_std: float = 2.3,
                      generator: torch.Generator | None = None) -> torch.nn.Module:
    """Re-initialise the connection of every :class:`SpikingLayer` in ``model`` in place; biases to 0."""
    if not 0 < input_rate < 1:
        raise ValueError(f"input_rate must lie in (0, 1), got {input_rate}")
    for layer in model.modules():
        if not isinstance(layer, SpikingLayer):
            continue
        weight = layer.connection.weight
        fan_in = weight[0].numel()
        energy = kernel_energy(layer)
        std = v_std * layer.neuron.threshold / math.sqrt(fan_in * input_rate * (1 - input_rate) * energy)
        with torch.no_grad():
            weight.copy_(torch.randn(weight.shape, generator=generator, dtype=weight.dtype) * std)
            if getattr(layer.connection, "bias", None) is not None:
                layer.connection.bias.zero_()
    return model


@torch.no_grad()
def calibrate_(model: torch.nn.Sequential, sample: torch.Tensor, low: float = 0.05, high: float = 0.2,
               max_iter: int = 30) -> list[float]:
    """Scale each SpikingLayer's weights, first to last, until it fires at a rate in [low, high].

    model: a ``torch.nn.Sequential`` (e.g. from :func:`iirsnn.models.from_spec`); sample: a batch of
    input spikes [T, B, ...]. Layers are calibrated in order on the activity of the calibrated layers
    before them. Returns the final firing rate of every SpikingLayer.
    """
    if not 0 <= low < high <= 1:
        raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
    rates = []
    h = sample
    for module in model:
        if not isinstance(module, SpikingLayer):
            h = module(h)
            continue
        h = _calibrate_layer(module, h, low, high, max_iter)
        rates.append(float(h.mean()))
    return rates


def _calibrate_layer(layer: SpikingLayer, x: torch.Tensor, low: float, high: float, max_iter: int) -> torch.Tensor:
    """Scale the layer's weights geometrically: double/halve to bracket [low, high], then bisect."""
    weight = layer.connection.weight
    original = weight.clone()
    below, above = None, None  # scales known to give a rate below low / above high
    scale = 1.0
    for _ in range(max_iter):
        weight.copy_(original * scale)
        out = layer(x)
        rate = float(out.mean())
        if low <= rate <= high:
            return out
        if rate < low:
            below = scale
            scale = scale * 2.0 if above is None else (scale * above) ** 0.5
        else:
            above = scale
            scale = scale / 2.0 if below is None else (scale * below) ** 0.5
    return out
