"""featx: images and audio into model-ready features and embeddings, compatible with Hugging Face."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .batch import BatchFeature, TensorType
from .errors import ConfigError, DependencyError, FeatxError, InputError, ModelLoadError

__version__ = "0.1.0"

# Public name -> module. Resolved on first access so `import featx` does not import torch, PIL
# processors, pyarrow or ray until they are used.
_LAZY: dict[str, str] = {
    "AutoImageProcessor": "featx.registry",
    "AutoFeatureExtractor": "featx.registry",
    "AutoProcessor": "featx.registry",
    "FeatureExtractionMixin": "featx.config",
    "ImageProcessingMixin": "featx.config",
    "PILImageResampling": "featx.enums",
    "ImageFeatureExtractionMixin": "featx.image.mixin",
    "load_image": "featx.image.io",
    "BaseImageProcessor": "featx.image.processors",
    "ViTImageProcessor": "featx.image.processors",
    "DeiTImageProcessor": "featx.image.processors",
    "CLIPImageProcessor": "featx.image.processors",
    "BitImageProcessor": "featx.image.processors",
    "ConvNextImageProcessor": "featx.image.processors",
    "SiglipImageProcessor": "featx.image.processors",
    "FuyuImageProcessor": "featx.image.fuyu",
    "LlavaNextImageProcessor": "featx.image.llava_next",
    "adapters": "featx.adapters",
    "llm": "featx.llm",
    "patches": "featx.patches",
    "load_audio": "featx.audio.io",
    "load_video": "featx.video.decode",
    "video": "featx.video",
    "SequenceFeatureExtractor": "featx.audio.sequence",
    "chunk": "featx.audio.chunking",
    "WhisperFeatureExtractor": "featx.audio.extractors",
    "ASTFeatureExtractor": "featx.audio.extractors",
    "Wav2Vec2FeatureExtractor": "featx.audio.extractors",
    "audio": "featx.audio",
    "ray": "featx.ray",
    "pipeline": "featx.pipelines",
    "load_model": "featx.models",
    "load_processor": "featx.pipelines",
    "AutoTokenizer": "featx.text.tokenization",
    "embed_text": "featx.text.embed",
    "load_text_embedder": "featx.text.embed",
}

__all__ = [
    "BatchFeature",
    "TensorType",
    "FeatxError",
    "InputError",
    "ConfigError",
    "ModelLoadError",
    "DependencyError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'featx' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name.rsplit(".", 1)[-1] == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover
    from .audio.extractors import (
        ASTFeatureExtractor,
        SequenceFeatureExtractor,
        Wav2Vec2FeatureExtractor,
        WhisperFeatureExtractor,
    )
    from .audio.io import load_audio
    from .video.decode import load_video
    from .config import FeatureExtractionMixin, ImageProcessingMixin
    from .enums import PILImageResampling
    from .image.fuyu import FuyuImageProcessor
    from .image.llava_next import LlavaNextImageProcessor
    from .image.io import load_image
    from .image.mixin import ImageFeatureExtractionMixin
    from .image.processors import (
        BaseImageProcessor,
        BitImageProcessor,
        CLIPImageProcessor,
        ConvNextImageProcessor,
        DeiTImageProcessor,
        SiglipImageProcessor,
        ViTImageProcessor,
    )
    from .models import load_model
    from .pipelines import load_processor, pipeline
    from .registry import AutoFeatureExtractor, AutoImageProcessor, AutoProcessor
    from .text.embed import embed_text, load_text_embedder
    from .text.tokenization import AutoTokenizer
