"""Features for language models: token arrays (visual, audio) an LLM takes as ``inputs_embeds``,
and the ``featx embed --tokens`` job. See docs/llm.md."""

from .tokens import TokenEmbedder, resolve_adaptor, stack_frames

__all__ = ["TokenEmbedder", "resolve_adaptor", "stack_frames"]
