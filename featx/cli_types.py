"""Argument types shared by the command line's subcommands (argparse ``type=`` callables)."""

from __future__ import annotations

import argparse

__all__ = ["BACKEND_CHOICES", "positive_int", "positive_float", "duration"]

# featx.backends.BACKENDS, without importing torch to build a parser.
BACKEND_CHOICES = ("torch", "onnx", "openvino", "inductor", "auto")


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    """A number > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def duration(text: str) -> float:
    """A number of seconds (or milliseconds) >= 0."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a duration >= 0, got {text}")
    return value
