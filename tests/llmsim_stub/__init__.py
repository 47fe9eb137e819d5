"""A minimal LLMSim stand-in implementing ../shared/llmsim-contract.md, so the
emitted modules can be executed in tests (import root: tests.llmsim_stub)."""
