"""Stage 9, validate: astgen's weights and forward pass against oracles (transformers on the meta
device, a recording, sglang itself in a process of its own)."""
