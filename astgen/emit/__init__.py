"""Stage 6, emit: LLMSim model_arch modules in black's style (modules), the package they form (package),
and their installation into an LLMSim checkout (llmsim)."""
