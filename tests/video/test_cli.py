"""``featx embed`` on videos: one row per sampled frame (or per video with --video-pool mean),
the same numbers as the frames embedded as images, damaged videos kept in part and flagged, the
sound track with an audio model, and ``featx search`` answering with path@time."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from featx import load_video
from featx.cli import main
from featx.embedding import Embedder

from ._media import colour_frame


def _rows(out):
    tables = [pq.read_table(p) for p in sorted(out.glob("part-*.parquet"))]
    return [r for t in tables for r in t.to_pylist()]


@pytest.fixture(scope="module")
def vit(tiny_checkpoint):
    return str(tiny_checkpoint("vit"))


@pytest.fixture(scope="module")
def folder(videos, tmp_path_factory):
    d = tmp_path_factory.mktemp("clip_folder")
    for name in ("colour", "vfr", "truncated", "audio_only", "garbage"):
        shutil.copy(videos[name], d / videos[name].name)
    from PIL import Image

    Image.fromarray(colour_frame(5)).save(d / "still.png")
    (d / "notes.txt").write_text("not media")
    return d


@pytest.fixture(scope="module")
def frames_out(vit, folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("frames_out") / "out"
    code = main(["embed", str(folder), "-m", vit, "-o", str(out), "--dtype", "float32", "--progress", "none",
                 "--workers", "2"])
    assert code == 3  # completed; the damaged and the non-video files failed
    return out


def test_one_row_per_frame_with_frame_numbers_and_times(frames_out, folder):
    rows = _rows(frames_out)
    by_path = {}
    for r in rows:
        by_path.setdefault(r["path"].rsplit("/", 1)[-1], []).append(r)
    assert sorted(by_path) == ["audio_only.mp4", "colour.mp4", "garbage.mp4", "still.png", "truncated.mkv", "vfr.mkv"]
    colour = by_path["colour.mp4"]
    assert [(r["frame"], r["time_s"], r["partial"], r["error"]) for r in colour] == \
        [(0, 0.0, False, None), (10, 1.0, False, None), (20, 2.0, False, None), (30, 3.0, False, None)]
    assert [r["time_s"] for r in by_path["vfr.mkv"]] == [0.0, 1.0, 2.0, 3.2]
    assert [(r["frame"], r["time_s"]) for r in by_path["still.png"]] == [(0, 0.0)]
    manifest = json.loads((frames_out / "_featx.json").read_text())
    assert manifest["parts"] == "frames" and manifest["video"] == {"fps": 1.0, "pool": "none", "max_frames": 1024}


def test_damaged_videos_keep_flagged_rows_and_an_error_row(frames_out):
    rows = [r for r in _rows(frames_out) if r["path"].endswith("truncated.mkv")]
    flagged, error_rows = rows[:-1], rows[-1:]
    assert len(flagged) >= 1 and all(r["partial"] and r["embedding"] is not None for r in flagged)
    assert [r["time_s"] for r in flagged] == [float(i) for i in range(len(flagged))]
    assert all("truncated" in r["error"] for r in rows)
    assert error_rows[0]["embedding"] is None and error_rows[0]["frame"] is None
    [audio] = [r for r in _rows(frames_out) if r["path"].endswith("audio_only.mp4")]
    assert audio["embedding"] is None and "no video stream" in audio["error"]
    [garbage] = [r for r in _rows(frames_out) if r["path"].endswith("garbage.mp4")]
    assert "not a recognised video" in garbage["error"]


def test_frame_rows_equal_the_frames_embedded_as_images(frames_out, videos, vit):
    embedder = Embedder(vit, dtype="float32")
    images = [f.image for f in load_video(videos["colour"])]
    expected = embedder.embed([embedder.prepare(im) for im in images])
    got = [r["embedding"] for r in _rows(frames_out) if r["path"].endswith("colour.mp4")]
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-5, atol=1e-5)


def test_resume_gives_nothing_new_and_other_sampling_is_refused(frames_out, folder, vit, capsys):
    before = len(_rows(frames_out))
    args = ["embed", str(folder), "-m", vit, "-o", str(frames_out), "--dtype", "float32", "--progress", "none"]
    assert main(args) == 3
    assert len(_rows(frames_out)) == before
    assert main(args + ["--video-fps", "2"]) == 2
    assert "video" in capsys.readouterr().err


@pytest.mark.parametrize("option, counts", [
    (["--video-frames", "3"], {"colour.mp4": [0, 20, 39], "vfr.mkv": [0, 4, 9]}),
    (["--keyframes"], {"colour.mp4": list(range(0, 40, 5)), "vfr.mkv": "demuxed"}),
    (["--video-fps", "0.5"], {"colour.mp4": [0, 20], "vfr.mkv": [0, 7]}),
    (["--scenes"], {"colour.mp4": [0, 10, 20, 30], "vfr.mkv": [0, 4, 7, 9]}),
])
def test_sampling_options(option, counts, videos, vit, tmp_path):
    out = tmp_path / "out"
    assert main(["embed", str(videos["colour"]), str(videos["vfr"]), "-m", vit, "-o", str(out), "--dtype",
                 "float32", "--progress", "none", *option]) == 0
    got = {}
    for r in _rows(out):
        got.setdefault(r["path"].rsplit("/", 1)[-1], []).append(r["frame"])
    if counts["vfr.mkv"] == "demuxed":  # the encoder adds key frames at colour changes: ask the packets
        counts["vfr.mkv"] = _key_frame_numbers(videos["vfr"])
        assert counts["vfr.mkv"][:2] == [0, 5]
    assert got == counts


def _key_frame_numbers(path):
    import av

    with av.open(str(path)) as c:
        packets = sorted((p.pts, p.is_keyframe) for p in c.demux(c.streams.video[0]) if p.size)
    return [i for i, (_, key) in enumerate(packets) if key]


@pytest.mark.parametrize("normalize", [False, True])
def test_video_pool_mean_is_the_mean_of_the_frames(videos, vit, tmp_path, normalize):
    flags = ["--normalize"] if normalize else []
    frames_out, mean_out = tmp_path / "frames", tmp_path / "mean"
    common = ["-m", vit, "--dtype", "float32", "--progress", "none", *flags]
    assert main(["embed", str(videos["colour"]), "-o", str(frames_out), *common]) == 0
    assert main(["embed", str(videos["colour"]), "-o", str(mean_out), "--video-pool", "mean", *common]) == 0
    frames = np.asarray([r["embedding"] for r in _rows(frames_out)], np.float64)
    [row] = _rows(mean_out)
    assert set(row) == {"path", "embedding", "error"}
    expected = frames.mean(0)
    if normalize:  # each frame normalized, then the mean normalized again
        assert np.allclose(np.linalg.norm(frames, axis=1), 1, atol=1e-5)
        expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(row["embedding"], expected, rtol=1e-5, atol=1e-6)


def test_max_frames_cap_keeps_the_first_frames_flagged(videos, vit, tmp_path):
    out = tmp_path / "out"
    assert main(["embed", str(videos["colour"]), "-m", vit, "-o", str(out), "--dtype", "float32",
                 "--progress", "none", "--video-fps", "10", "--video-max-frames", "3"]) == 3
    rows = _rows(out)
    assert [r["frame"] for r in rows] == [0, 1, 2, None]
    assert all(r["partial"] for r in rows[:3]) and "--video-max-frames" in rows[-1]["error"]


def test_audio_model_embeds_the_sound_track_in_windows(videos, tiny_checkpoint, tmp_path):
    w2v = str(tiny_checkpoint("wav2vec2"))
    out = tmp_path / "out"
    assert main(["embed", str(videos["sound"]), str(videos["colour"]), "-m", w2v, "-o", str(out), "--dtype",
                 "float32", "--progress", "none"]) == 3
    rows = _rows(out)
    sound = [r for r in rows if r["path"].endswith("sound.mp4")]
    assert [(r["window"], r["start"], r["start_s"]) for r in sound] == [(0, 0, 0.0)]
    assert sound[0]["end_s"] == pytest.approx(sound[0]["end"] / 16000) and 2.9 < sound[0]["end_s"] < 3.2
    embedder = Embedder(w2v, dtype="float32")
    [expected] = embedder.embed_windows([embedder.prepare(str(videos["sound"]))])
    np.testing.assert_allclose(sound[0]["embedding"], expected[0], rtol=1e-5, atol=1e-5)
    [silent] = [r for r in rows if r["path"].endswith("colour.mp4")]
    assert "no audio stream" in silent["error"]


def test_option_errors(videos, vit, tiny_checkpoint, tmp_path, capsys):
    base = ["embed", str(videos["colour"]), "-o", str(tmp_path / "o"), "--progress", "none"]
    assert main(base + ["-m", vit, "--scene-threshold", "0.5"]) == 2
    assert "--scenes" in capsys.readouterr().err
    assert main(base + ["-m", str(tiny_checkpoint("wav2vec2")), "--keyframes"]) == 2
    assert "sound track" in capsys.readouterr().err
    assert main(base + ["-m", vit, "--keyframes", "--scenes"]) == 2


def test_search_prints_path_at_time_and_groups_by_video(frames_out, tmp_path, capsys):
    from PIL import Image

    query = tmp_path / "green.png"
    Image.fromarray(colour_frame(1)).save(query)
    assert main(["search", str(frames_out), str(query), "-k", "3", "--exact"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # second 1 is green in the three videos (the truncated one's flagged rows are searchable too)
    assert sorted(line.split()[-1].rsplit("/", 1)[-1] for line in lines[1:]) == \
        ["colour.mp4@1.00s", "truncated.mkv@1.00s", "vfr.mkv@1.00s"]
    assert main(["search", str(frames_out), str(query), "-k", "10", "--group-by", "path", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)[0]["results"]
    paths = [h["path"].rsplit("/", 1)[-1] for h in hits]
    assert len(paths) == len(set(paths)) == 4  # colour, vfr, truncated (flagged frames), still
    assert {(p, h["time_s"]) for p, h in zip(paths[:3], hits[:3])} == \
        {("colour.mp4", 1.0), ("vfr.mkv", 1.0), ("truncated.mkv", 1.0)}
    assert paths[3] == "still.png" and hits[3]["score"] < hits[2]["score"]
    assert all("frame" in h for h in hits)
