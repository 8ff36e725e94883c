"""The README's main job and Python snippets, run as written: they must stay true.

The main job (the first ``bash`` block, without its ``pip install`` part) runs in a scratch folder
that links ``featx/`` and ``bench/`` from the repository, then every ``python`` block runs there:
``>>>`` blocks as doctests (lines marked ``# doctest: +SKIP`` need the hub and are left out),
others with ``exec``. The model runs in float32 whatever the CPU, as the README's numbers are.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
import shlex
import subprocess
import sys

import pytest

from featx.cli import main

from .engine._helpers import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _blocks(language: str) -> list[tuple[int, str]]:
    """(line number, text) of the README's fenced blocks in ``language``."""
    return [(README[: m.start()].count("\n") + 1, m.group(2)) for m in _FENCE.finditer(README)
            if m.group(1) == language]


def _printed_block(title: str) -> str:
    """The text of the first unlabelled block after the paragraph starting with ``title``."""
    tail = README[README.index(title):]
    return next(m.group(2) for m in _FENCE.finditer(tail) if m.group(1) == "")


@pytest.fixture(scope="module")
def readme_dir(tmp_path_factory):
    """A scratch folder where the README's main job has run; yields (folder, what it printed)."""
    pytest.importorskip("transformers")  # bench/make_checkpoint.py makes the demo model with it
    from featx.models import loading

    work = tmp_path_factory.mktemp("readme")
    for name in ("featx", "bench"):
        (work / name).symlink_to(REPO / name, target_is_directory=True)
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setattr(loading, "cpu_flags", lambda: frozenset())  # no native bfloat16: "auto" is float32
        command = _blocks("bash")[0][1].strip()
        for step in (s.strip() for s in command.split("&&")):
            args = shlex.split(step)
            if args[:2] == ["pip", "install"]:
                continue
            if args[0] == "python":
                proc = subprocess.run([sys.executable, *args[1:]], capture_output=True, text=True, cwd=work)
                assert proc.returncode == 0, proc.stderr
                printed.write(proc.stdout)
            else:
                assert args[0] == "featx", step
                with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                    assert main(args[1:]) == 0, printed.getvalue()
        yield work, printed.getvalue()


def test_the_main_job_prints_what_the_readme_shows(readme_dir):
    _, printed = readme_dir
    shown = _printed_block("What the main job prints")
    assert "done 3, failed 0, skipped 0 (already written); 3 rows in 1 new shards" in shown
    assert "done 3, failed 0, skipped 0 (already written); 3 rows in 1 new shards" in printed

    def results(text):
        lines = text[text.index("query: "):].splitlines()
        return lines[0], [line.split() for line in lines[1:] if line.strip()]

    query, hits = results(printed)
    shown_query, shown_hits = results(shown)
    assert query == shown_query and len(hits) == len(shown_hits) == 3
    for (rank, score, path), (shown_rank, shown_score, shown_path) in zip(hits, shown_hits):
        assert (rank, path) == (shown_rank, shown_path)
        assert float(score) == pytest.approx(float(shown_score), abs=1e-3)


SNIPPETS = _blocks("python")


@pytest.mark.parametrize("line, code", SNIPPETS, ids=[f"README.md:{line}" for line, _ in SNIPPETS])
def test_readme_snippet_runs_as_written(readme_dir, monkeypatch, line, code):
    from featx.models import loading

    work, _ = readme_dir
    monkeypatch.chdir(work)
    monkeypatch.setattr(loading, "cpu_flags", lambda: frozenset())
    if ">>>" not in code:
        exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "readme"})
        return
    test = doctest.DocTestParser().get_doctest(code, {"__name__": "readme"}, f"README.md:{line}", "README.md", line)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, out=report.write)
    assert result.failed == 0, report.getvalue()
    assert result.attempted > 0
