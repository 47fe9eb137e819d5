"""Stages 1-2, the front end: a source tree (sglang's or mini-sglang's), its files parsed once, and what
the trace reads beside model code: sglang's config registry, server arguments, drafts; Hugging Face configs."""
