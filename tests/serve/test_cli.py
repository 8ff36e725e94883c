"""`featx serve`'s argument checks (before any model loads)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("argv, message", [
    (["serve"], "needs OUT"),
    (["serve", "{out}", "--pool", "mean"], "cannot be given with OUT"),
    (["serve", "{out}", "-p", "do_resize=false"], "cannot be given with OUT"),
    (["serve", "{out}", "--model", "{tmp}"], "not the model"),
    (["serve", "{out}", "--allow-private-urls"], "needs --allow-urls"),
    (["serve", "{tmp}"], "not a featx output folder"),
])
def test_the_command_line_refuses_clashing_options(argv, message, out, tmp_path, capsys):
    from featx.cli import EXIT_USAGE, main

    args = [a.format(out=out, tmp=tmp_path) for a in argv]
    assert main(args) == EXIT_USAGE
    assert message in capsys.readouterr().err
