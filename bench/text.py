"""Text towers and text search: featx against transformers' get_text_features, in one run.

    python bench/text.py [--quick] [--texts N] [--rows N]

Model: a CLIP with the text tower of openai/clip-vit-base-patch32 (width 512, 12 layers, 8 heads,
MLP 2048, 77 positions, projection 512), random weights, with a byte-level BPE tokenizer trained
on a few sentences (tests/text_checkpoints.py; a small vocabulary, so tokenization is cheaper
than with CLIP's 49k merges for both sides alike), built once into bench/_data/.

1. Text embedding throughput at batch 64 (texts/s, model loading excluded): featx
   ``TextEmbedder.embed`` (tokenize + model + normalize) vs the reference's tokenizer +
   ``get_text_features`` (padding=True), both float32; and featx at dtype "auto".
2. ``featx search OUT --text ...`` over N rows (default 100,000) of 512-dim joint embeddings
   (random unit vectors written as an OUT folder): the whole command (model loading included),
   exact NumPy and the USearch index, and its parts: one query's text embedding (featx vs the
   reference), exact search, index search. The OUT folder and its index are built once and kept.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np

print = functools.partial(print, flush=True)  # noqa: A001 - progress shows while the slow parts run
ROOT = Path(__file__).resolve().parent
DATA = ROOT / "_data"
sys.path.insert(0, str(ROOT.parent))

TEXT = dict(hidden_size=512, num_hidden_layers=12, num_attention_heads=8, intermediate_size=2048,
            max_position_embeddings=77)
WORDS = ("a photo of a dog on a beach at sunset with a red ball the cat sleeps on green grass near "
         "blue water while children play and a yellow car drives past old houses in the rain").split()


def make_model(folder: Path) -> Path:
    """The bench checkpoint (built once)."""
    if (folder / "model.safetensors").is_file():
        return folder
    import torch
    import transformers as tf

    from tests.text_checkpoints import VISION, clip_tokenizer

    tok = clip_tokenizer(folder)
    torch.manual_seed(0)
    text = dict(TEXT, vocab_size=49408, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id)
    model = tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=VISION, projection_dim=512)).eval()
    model.save_pretrained(folder, safe_serialization=True)
    tf.CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, int(rng.integers(4, 20)))) for _ in range(n)]


def featx_rate(model: Path, texts: list[str], dtype: str) -> tuple[float, np.ndarray]:
    from featx.text import load_text_embedder

    embedder = load_text_embedder(model, dtype=dtype, device="cpu")
    embedder.embed(texts[:64], batch_size=64)  # warm-up
    start = time.perf_counter()
    out = embedder.embed(texts, batch_size=64)
    return len(texts) / (time.perf_counter() - start), out


def reference_rate(model: Path, texts: list[str]) -> tuple[float, np.ndarray]:
    import torch
    import transformers as tf

    ref = tf.CLIPModel.from_pretrained(model, dtype=torch.float32).eval()
    tok = tf.AutoTokenizer.from_pretrained(model)

    def run(batch: list[str]) -> torch.Tensor:
        with torch.inference_mode():
            out = ref.get_text_features(**tok(batch, padding=True, truncation=True, return_tensors="pt"))
        return torch.nn.functional.normalize(getattr(out, "pooler_output", out), dim=-1)

    run(texts[:64])
    start = time.perf_counter()
    out = torch.cat([run(texts[i:i + 64]) for i in range(0, len(texts), 64)])
    return len(texts) / (time.perf_counter() - start), out.numpy()


def make_out(folder: Path, model: Path, rows: int, dim: int = 512) -> Path:
    """An OUT folder of ``rows`` random unit vectors, as `featx embed --pool joint` writes it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if (folder / "_featx.json").is_file() and json.loads((folder / "_featx.json").read_text())["rows"] == rows:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*"):
        old.unlink()
    rng = np.random.default_rng(0)
    shard = 8192
    for n, start in enumerate(range(0, rows, shard)):
        count = min(shard, rows - start)
        vectors = rng.standard_normal((count, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim)
        table = pa.table({"path": pa.array([f"images/{i:07d}.jpg" for i in range(start, start + count)]),
                          "embedding": embedding, "error": pa.nulls(count, pa.string())})
        pq.write_table(table, folder / f"part-{n:06d}.parquet")
    manifest = {"kind": "embeddings", "model": str(model.resolve()), "revision": None, "pool": "joint",
                "normalize": False, "dtype": "float32", "modality": "image", "dim": dim, "processor_options": {},
                "windows": False, "format": "parquet", "rows": rows}
    (folder / "_featx.json").write_text(json.dumps(manifest))
    return folder


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="128 texts, 20,000 rows (a smoke run)")
    parser.add_argument("--texts", type=int)
    parser.add_argument("--rows", type=int)
    args = parser.parse_args()
    n_texts = args.texts or (128 if args.quick else 512)
    rows = args.rows or (20_000 if args.quick else 100_000)
    model = make_model(DATA / "clip-text-b32")
    texts = make_texts(n_texts)
    print(f"featx text bench: CLIP ViT-B/32 text tower (512 wide, 12 layers), random weights; {n_texts} texts "
          f"of 4-19 words at batch 64; search over {rows:,} rows of 512-dim embeddings")

    ref_rate, ref_out = reference_rate(model, texts)
    f32_rate, f32_out = featx_rate(model, texts, "float32")
    auto_rate, _ = featx_rate(model, texts, "auto")
    print("\n1. text embedding, texts/s at batch 64 (model loading excluded)")
    print(f"   transformers get_text_features float32  {ref_rate:8.1f}")
    print(f"   featx TextEmbedder.embed float32         {f32_rate:8.1f}   ({f32_rate / ref_rate:.2f}x)")
    print(f"   featx TextEmbedder.embed auto            {auto_rate:8.1f}   ({auto_rate / ref_rate:.2f}x)")
    print(f"   max |featx - reference| (float32, unit vectors): {np.abs(f32_out - ref_out).max():.2e}")

    from featx.cli import main as featx_main
    from featx.search import build_index, exact_search, index_search
    from featx.text import load_text_embedder

    from featx.search import index_state

    out = make_out(DATA / f"text-search-{rows}", model, rows)
    start = time.perf_counter()
    if index_state(out) != "fresh":  # built once, kept in bench/_data
        build_index(out)
    index_s = time.perf_counter() - start
    query = "a dog on a beach"
    embedder = load_text_embedder(model, dtype="float32", device="cpu")
    vec = embedder.embed([query])
    featx_q = timed(lambda: embedder.embed([query]), 5)
    import torch
    import transformers as tf

    ref = tf.CLIPModel.from_pretrained(model, dtype=torch.float32).eval()
    tok = tf.AutoTokenizer.from_pretrained(model)

    def ref_query() -> None:
        with torch.inference_mode():
            ref.get_text_features(**tok([query], padding=True, return_tensors="pt"))

    ref_q = timed(ref_query, 5)
    exact_s = timed(lambda: exact_search(out, vec, 10))
    ann_s = timed(lambda: index_search(out, vec, 10))
    def cli(*extra: str) -> None:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            assert featx_main(["search", str(out), "--text", query, "-k", "10", *extra, "--device", "cpu"]) == 0

    cli_exact = timed(lambda: cli("--exact"), 2)
    cli_index = timed(lambda: cli("--index"), 2)
    exact_hits = [h.path for h in exact_search(out, vec, 10)[0]]
    ann_hits = [h.path for h in index_search(out, vec, 10)[0]]
    recall = len(set(exact_hits) & set(ann_hits)) / 10
    print(f"\n2. `featx search OUT --text {query!r} -k 10` over {rows:,} rows (index ready in {index_s:.1f} s)")
    print(f"   whole command, exact NumPy               {cli_exact * 1000:8.0f} ms (model loading included)")
    print(f"   whole command, USearch index             {cli_index * 1000:8.0f} ms")
    print(f"   one query's text embedding: featx {featx_q * 1000:.1f} ms, transformers {ref_q * 1000:.1f} ms "
          f"({ref_q / featx_q:.2f}x)")
    print(f"   exact search {exact_s * 1000:.0f} ms, index search {ann_s * 1000:.1f} ms "
          f"({exact_s / ann_s:.0f}x), recall@10 of the index {recall:.1f}")


if __name__ == "__main__":
    main()
