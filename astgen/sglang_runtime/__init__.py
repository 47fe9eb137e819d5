"""The sglang runtime oracle: the real sglang package, imported on CPU.

Runs only in a process of its own (``python -m astgen.sglang_runtime``,
started by :func:`astgen.validate.oracles.sglang_runtime`); astgen's analysis never
imports this package, torch or sglang. Three rooms:

* ``standins``: empty modules for GPU-only packages (sgl-kernel, flashinfer,
  deep_gemm ...) so that sglang's imports and ``__init__`` bodies run; a
  stand-in never decides a shape, and every one used is reported;
* ``parallel``: sglang's parallel-state getters and server arguments set for
  one rank of one layout (no process group of that size exists);
* ``record``: the model class built on torch's meta device, its parameters
  listed (name, shape, dtype).
"""
