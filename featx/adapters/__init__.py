"""``featx.adapters``: small modules mapping encoder tokens into a language model's embedding space,
their safetensors + JSON files, LLaVA's projector loaded directly, and a training helper."""

from .modules import (
           ADAPTOR_CONFIG,
           ADAPTOR_WEIGHTS,
           Adaptor,
           LinearAdaptor,
           MLPAdaptor,
           load_adaptor,
)
from .train import contrastive_loss, fit_adaptor, mse_loss

__all__ = [
           "ADAPTOR_CONFIG",
           "ADAPTOR_WEIGHTS",
           "Adaptor",
           "LinearAdaptor",
           "MLPAdaptor",
           "contrastive_loss",
           "fit_adaptor",
           "load_adaptor",
           "mse_loss",
]
