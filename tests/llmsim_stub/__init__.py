"""A minimal LLMSim stand-in: LLMSim's model_arch interface (src.arch:
BaseModelArch, the operator classes, ForwardMode, DataType) and its
calculator's conventions (perf_calculator.py), so that the emitted modules
can be executed in tests (import root: tests.llmsim_stub)."""
