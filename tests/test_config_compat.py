"""ConfigMixin against the reference's mixins: kept unknown options, to_dict types, hub push, auto class."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

import featx
from featx.config import ConfigMixin, FeatureExtractionMixin, ImageProcessingMixin
from featx.errors import ConfigError

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

IMAGE_NAMES = ["ViT", "CLIP", "Bit", "ConvNext", "Siglip", "DeiT", "Fuyu"]
AUDIO_NAMES = ["WhisperFeatureExtractor", "ASTFeatureExtractor", "Wav2Vec2FeatureExtractor"]


def ours_image(name: str) -> type:
    return getattr(featx, f"{name}ImageProcessor")


def ref_image(name: str) -> type:
    return getattr(transformers, f"{name}ImageProcessorPil")  # the PIL backend (no torchvision needed)


# ---- toy classes: dataclass subclasses at several levels ------------------------------------------
@dataclasses.dataclass(repr=False)
class Base(ConfigMixin):
    scale: float = 0.5


@dataclasses.dataclass(repr=False)
class Child(Base):
    size: int = 4


@dataclasses.dataclass(repr=False)
class GrandChild(Child):
    mode: str = "a"

    def __post_init__(self) -> None:
        self.seen = "post_init ran"  # a public attribute set by the class itself: kept like an extra


class Plain(Child):  # not re-decorated: inherits Child's __init__
    pass


@pytest.mark.parametrize("cls", [Base, Child, GrandChild, Plain])
def test_unknown_keywords_are_kept_at_every_subclass_level(cls, tmp_path):
    obj = cls(scale=2.0, foo=1, bar={"x": [1, 2]})
    assert obj.scale == 2.0 and obj.foo == 1 and obj.bar == {"x": [1, 2]}
    assert obj.extra_options["foo"] == 1
    saved = obj.to_dict()
    assert saved["foo"] == 1 and saved["bar"] == {"x": [1, 2]} and saved["image_processor_type"] == cls.__name__
    obj.save_pretrained(tmp_path)
    again = cls.from_pretrained(tmp_path)
    assert again.foo == 1 and again.bar == {"x": [1, 2]} and again == obj
    assert again.to_dict() == obj.to_dict()


def test_the_type_key_and_processor_class_are_not_kept():
    obj = Child(image_processor_type="Child", feature_extractor_type="X", processor_class="P", foo=3)
    assert obj.extra_options == {"foo": 3}
    assert not hasattr(obj, "processor_class")


def test_extras_follow_attribute_changes_and_the_view_writes_through():
    obj = Child(foo=1)
    obj.foo = 2
    obj.extra_options["later"] = [3]
    assert obj.later == [3] and obj.to_dict()["foo"] == 2 and obj.to_dict()["later"] == [3]
    del obj.extra_options["later"]
    assert "later" not in obj.to_dict() and not hasattr(obj, "later")
    with pytest.raises(ConfigError, match="is an option"):
        obj.extra_options["scale"] = 1.0
    obj.also_public = "set after init"  # as in the reference, any public attribute is saved
    assert obj.to_dict()["also_public"] == "set after init"
    obj._private_cache = object()  # private attributes are not options
    assert "_private_cache" not in obj.to_dict()


def test_to_dict_returns_deep_copies_and_json_converts():
    obj = Child(pair=(1, 2), nested={"t": (3, 4)}, arr=np.arange(2), mode=featx.PILImageResampling.BICUBIC)
    d = obj.to_dict()
    assert d["pair"] == (1, 2) and isinstance(d["pair"], tuple)
    assert d["mode"] is featx.PILImageResampling.BICUBIC
    d["nested"]["t"] = None
    assert obj.nested == {"t": (3, 4)}
    data = json.loads(obj.to_json_string())
    assert data["pair"] == [1, 2] and data["nested"] == {"t": [3, 4]} and data["arr"] == [0, 1] and data["mode"] == 3


def test_from_dict_keeps_unknown_keys_as_attributes_and_kwargs_semantics():
    obj, unused = Child.from_dict(
        {"scale": 1.0, "future": 5, "auto_map": {"A": "m.C"}}, size=9, future=6, nope=1, return_unused_kwargs=True
    )
    assert obj.size == 9 and obj.future == 6  # an option, and a key of the config, are overridden
    assert unused == {"nope": 1}
    assert not hasattr(obj, "auto_map")  # the reference's bookkeeping keys are dropped
    with pytest.warns(UserWarning, match="nope"):
        Child.from_dict({}, nope=1)


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_image_processors_keep_unknown_keywords_and_transformers_loads_them(name, tmp_path):
    ours = ours_image(name)(foo=1, bar=[1, 2])
    assert ours.foo == 1 and ours.to_dict()["foo"] == 1
    ours.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["foo"] == 1 and saved["bar"] == [1, 2]
    again = ours_image(name).from_pretrained(tmp_path)
    assert again.foo == 1 and again.to_dict() == ours.to_dict()
    ref = ref_image(name).from_pretrained(tmp_path)
    assert ref.foo == 1 and ref.bar == [1, 2]
    # and the reference's own save with an unknown keyword loads in featx
    ref_image(name)(baz="q").save_pretrained(tmp_path / "ref")
    assert ours_image(name).from_pretrained(tmp_path / "ref").baz == "q"


@pytest.mark.parametrize("name", AUDIO_NAMES)
def test_audio_extractors_keep_unknown_keywords_and_transformers_loads_them(name, tmp_path):
    ours = getattr(featx, name)(foo=1, do_normalize=True)
    assert ours.foo == 1 and ours.do_normalize is True
    ours.save_pretrained(tmp_path)
    ref = getattr(transformers, name).from_pretrained(tmp_path)
    assert ref.foo == 1
    expected = getattr(transformers, name)(foo=1, do_normalize=True).to_json_string()
    assert json.loads(ours.to_json_string()) == json.loads(expected)


def _type_table(d: dict) -> dict:
    return {k: type(v) for k, v in d.items()}


@pytest.mark.parametrize("name", AUDIO_NAMES)
def test_audio_to_dict_keys_and_types_match_the_reference(name):
    ours, ref = getattr(featx, name)(), getattr(transformers, name)()
    assert _type_table(ours.to_dict()) == _type_table(ref.to_dict())
    assert ours.to_dict() == ref.to_dict()
    assert json.loads(ours.to_json_string()) == json.loads(ref.to_json_string())


@pytest.mark.parametrize("name", [n for n in IMAGE_NAMES])
def test_image_to_dict_keys_and_types_match_the_reference(name):
    ours, ref = ours_image(name)(), ref_image(name)()
    assert _type_table(ours.to_dict()) == _type_table(ref.to_dict())
    got = json.loads(ours.to_json_string())
    expected = json.loads(ref.to_json_string())
    expected["image_processor_type"] = got["image_processor_type"]  # the Pil backend saves the plain name too
    assert got == expected


def test_pil_image_resampling_is_the_reference_enum():
    from transformers.image_utils import PILImageResampling

    assert featx.PILImageResampling is PILImageResampling
    assert featx.PILImageResampling.BICUBIC == 3


# ---- the reference's mixin names -----------------------------------------------------------------
def test_mixin_names_and_bases():
    assert featx.FeatureExtractionMixin is FeatureExtractionMixin
    assert featx.ImageProcessingMixin is ImageProcessingMixin
    for name in AUDIO_NAMES + ["SequenceFeatureExtractor"]:
        assert issubclass(getattr(featx, name), FeatureExtractionMixin)
    for name in ("from_pretrained", "save_pretrained", "push_to_hub", "to_dict", "from_dict", "to_json_string",
                 "to_json_file", "from_json_file", "get_config_dict", "register_for_auto_class"):
        assert callable(getattr(FeatureExtractionMixin, name)) and callable(getattr(ImageProcessingMixin, name))
    assert callable(FeatureExtractionMixin.get_feature_extractor_dict)
    assert callable(ImageProcessingMixin.get_image_processor_dict)


def test_image_processors_are_image_processing_mixins():
    for name in IMAGE_NAMES:
        assert issubclass(ours_image(name), ImageProcessingMixin), name


def test_get_feature_extractor_dict(tmp_path):
    featx.Wav2Vec2FeatureExtractor(foo=2).save_pretrained(tmp_path)
    data, rest = featx.Wav2Vec2FeatureExtractor.get_feature_extractor_dict(tmp_path, revision=None, other=1)
    assert data["foo"] == 2 and rest == {"other": 1}


def test_fetch_images_and_fetch_audio(tmp_path):
    import soundfile as sf
    from PIL import Image

    path = tmp_path / "x.png"
    Image.new("L", (5, 4)).save(path)

    @dataclasses.dataclass(repr=False)
    class Images(ImageProcessingMixin):
        pass

    got = Images().fetch_images([str(path), [path]])
    assert got[0].size == (5, 4) and got[0].mode == "RGB" and got[1][0].size == (5, 4)
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(800, np.float32), 8000)
    fe = featx.Wav2Vec2FeatureExtractor()
    audio = fe.fetch_audio([str(wav)])
    assert audio[0].dtype == np.float32 and audio[0].shape == (1600,)  # resampled to the extractor's rate
    assert fe.fetch_audio([0.5, 0.25]) == [0.5, 0.25]


# ---- register_for_auto_class and push_to_hub ------------------------------------------------------
class FakeApi:
    calls: list = []

    def __init__(self, **kwargs):
        FakeApi.calls.append(("init", kwargs))

    def create_repo(self, repo_id, **kwargs):
        FakeApi.calls.append(("create_repo", repo_id, kwargs))

        class Url:
            pass

        url = Url()
        url.repo_id = repo_id if "/" in repo_id else f"me/{repo_id}"
        return url

    def create_branch(self, **kwargs):
        FakeApi.calls.append(("create_branch", kwargs))

    def upload_folder(self, **kwargs):
        import os

        files = sorted(os.listdir(kwargs["folder_path"]))
        FakeApi.calls.append(("upload_folder", {**kwargs, "files_present": files}))
        return "commit-url"


@pytest.fixture
def fake_hub(monkeypatch):
    import huggingface_hub

    FakeApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    return FakeApi.calls


def test_save_pretrained_push_to_hub_creates_the_repo_and_uploads(fake_hub, tmp_path):
    fe = featx.WhisperFeatureExtractor()
    folder = tmp_path / "my-extractor"
    (folder).mkdir()
    (folder / "unrelated.txt").write_text("not ours")
    fe.save_pretrained(folder, push_to_hub=True, token="tok", private=True, commit_message=None)
    kinds = [c[0] for c in fake_hub]
    assert "create_repo" in kinds and kinds.index("create_repo") < kinds.index("upload_folder")
    create = next(c for c in fake_hub if c[0] == "create_repo")
    assert create[1] == "my-extractor" and create[2] == {"private": True, "token": "tok", "exist_ok": True}
    upload = next(c for c in fake_hub if c[0] == "upload_folder")[1]
    assert upload["repo_id"] == "me/my-extractor" and upload["token"] == "tok"
    assert upload["allow_patterns"] == ["preprocessor_config.json"]  # only what save_pretrained wrote
    assert upload["commit_message"] == "Upload feature extractor"
    assert (folder / "preprocessor_config.json").is_file()


def test_push_options_and_errors(fake_hub, tmp_path):
    ip = featx.ViTImageProcessor()
    ip.save_pretrained(tmp_path / "x", push_to_hub=True, repo_id="org/name", commit_message="msg",
                       revision="dev", use_auth_token="old")
    create = next(c for c in fake_hub if c[0] == "create_repo")
    assert create[1] == "org/name" and create[2]["token"] == "old"
    assert ("create_branch", {"repo_id": "org/name", "branch": "dev", "token": "old", "exist_ok": True}) in fake_hub
    upload = next(c for c in fake_hub if c[0] == "upload_folder")[1]
    assert upload["commit_message"] == "msg" and upload["revision"] == "dev"
    with pytest.raises(ConfigError, match="unknown arguments"):
        ip.save_pretrained(tmp_path / "y", push_to_hub=True, bogus=1)
    # without push_to_hub, extra keyword arguments are ignored as in the reference
    ip.save_pretrained(tmp_path / "z", bogus=1)


def test_push_to_hub_method_uploads_a_temporary_save(fake_hub):
    out = featx.ASTFeatureExtractor(foo=1).push_to_hub("me/ast", token="t", private=False)
    assert out == "commit-url"
    upload = next(c for c in fake_hub if c[0] == "upload_folder")[1]
    assert upload["files_present"] == ["preprocessor_config.json"] and upload["allow_patterns"] is None


def test_register_for_auto_class(tmp_path):
    from tests import _custom_processor as custom

    with pytest.raises(ConfigError, match="not a valid auto class"):
        custom.CustomExtractor.register_for_auto_class("AutoBogus")
    custom.CustomExtractor.register_for_auto_class()
    try:
        assert custom.CustomExtractor._auto_class == "AutoFeatureExtractor"
        assert featx.Wav2Vec2FeatureExtractor._auto_class is None  # set on the class only
        custom.CustomExtractor(foo=1).save_pretrained(tmp_path)
        saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
        assert saved["auto_map"] == {"AutoFeatureExtractor": "_custom_processor.CustomExtractor"}
        assert (tmp_path / "_custom_processor.py").is_file()
        assert custom.CustomExtractor.from_pretrained(tmp_path).foo == 1
    finally:
        custom.CustomExtractor._auto_class = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")

        @dataclasses.dataclass(repr=False)
        class Local(ImageProcessingMixin):
            pass

        Local.register_for_auto_class()
        assert Local._auto_class == "AutoImageProcessor"
        Local.register_for_auto_class(transformers.AutoProcessor)
        assert Local._auto_class == "AutoProcessor"
