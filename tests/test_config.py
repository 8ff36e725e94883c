import dataclasses
import json

import pytest

from featx.config import ConfigMixin
from featx.errors import ConfigError, ModelLoadError


@dataclasses.dataclass(repr=False)
class ToyProcessor(ConfigMixin):
    do_resize: bool = True
    size: dict = dataclasses.field(default_factory=lambda: {"height": 4, "width": 4})
    scale: float = 0.5

    @classmethod
    def normalize_options(cls, options):
        if isinstance(options.get("size"), int):
            options["size"] = {"height": options["size"], "width": options["size"]}
        return options


def test_round_trip_keeps_unknown_keys(tmp_path):
    proc = ToyProcessor.from_dict({"scale": 2.0, "future_option": [1, 2], "image_processor_type": "X"})
    assert proc.scale == 2.0 and proc.extra_options == {"future_option": [1, 2]}
    proc.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["future_option"] == [1, 2]
    assert saved["image_processor_type"] == "ToyProcessor"
    again = ToyProcessor.from_pretrained(tmp_path)
    assert again == proc and again.extra_options == proc.extra_options
    assert ToyProcessor.from_json_file(tmp_path / "preprocessor_config.json") == proc
    assert ToyProcessor.from_pretrained(tmp_path / "preprocessor_config.json") == proc


def test_overrides_and_unused_kwargs(tmp_path):
    ToyProcessor(scale=3.0).save_pretrained(tmp_path)
    proc, unused = ToyProcessor.from_pretrained(tmp_path, size=8, not_an_option=1, return_unused_kwargs=True)
    assert proc.size == {"height": 8, "width": 8} and proc.scale == 3.0
    assert unused == {"not_an_option": 1}
    with pytest.warns(UserWarning, match="not_an_option"):
        ToyProcessor.from_pretrained(tmp_path, not_an_option=1)


def test_legacy_spelling_is_normalized():
    assert ToyProcessor.from_dict({"size": 7}).size == {"height": 7, "width": 7}


def test_nested_processor_config(tmp_path):
    (tmp_path / "processor_config.json").write_text(
        json.dumps({"processor_class": "P", "image_processor": {"scale": 9.0}})
    )
    assert ToyProcessor.from_pretrained(tmp_path).scale == 9.0


def test_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="preprocessor_config.json"):
        ToyProcessor.from_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ToyProcessor.from_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text("[1]")
    with pytest.raises(ConfigError, match="JSON object"):
        ToyProcessor.from_pretrained(tmp_path)


def test_repr_is_json():
    assert '"scale": 0.5' in repr(ToyProcessor())
