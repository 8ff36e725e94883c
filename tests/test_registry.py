import json

import pytest

from featx import registry
from featx.errors import ConfigError


def test_duplicate_registration_is_an_error():
    @registry.register("image_processor", "toy-processor-for-test")
    class A:
        pass

    with pytest.raises(ConfigError, match="registered twice"):

        @registry.register("image_processor", "toy-processor-for-test")
        class B:
            pass


def test_unknown_kind():
    with pytest.raises(ValueError):
        registry.register("widget")


def test_lookup_unknown_lists_supported():
    with pytest.raises(ConfigError, match="ViTImageProcessor"):
        registry.lookup("image_processor", "NopeImageProcessor")


def test_backend_suffixes_resolve_to_one_class():
    base = registry.lookup("image_processor", "ViTImageProcessor")
    assert registry.lookup("image_processor", "ViTImageProcessorFast") is base
    assert registry.lookup("image_processor", "ViTImageProcessorPil") is base


def test_auto_from_type_name_and_legacy_feature_extractor(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"feature_extractor_type": "ViTFeatureExtractor"}))
    proc = registry.AutoImageProcessor.from_pretrained(tmp_path)
    assert type(proc).__name__ == "ViTImageProcessor"


@pytest.mark.parametrize(
    "model_type, expected",
    [("vit", "ViTImageProcessor"), ("dinov2", "BitImageProcessor"), ("clip_vision_model", "CLIPImageProcessor"),
     ("convnext", "ConvNextImageProcessor"), ("siglip", "SiglipImageProcessor"), ("deit", "DeiTImageProcessor")],
)
def test_auto_from_model_type(tmp_path, model_type, expected):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"do_resize": True}))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    assert type(registry.AutoImageProcessor.from_pretrained(tmp_path)).__name__ == expected


def test_auto_unknown_type_lists_supported(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_processor_type": "DetrImageProcessor"}))
    with pytest.raises(ConfigError, match="supports"):
        registry.AutoImageProcessor.from_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({}))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ConfigError, match="unsupported model_type 'llama'"):
        registry.AutoImageProcessor.from_pretrained(tmp_path)
