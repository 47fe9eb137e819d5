"""astgen: sglang model source -> dataflow IR -> LLMSim model_arch modules.

The pipeline, one module per stage: source -> parse -> trace -> ir -> shapes
-> emit; ``expr`` is the symbolic expression engine under all of them and
``rules`` loads the declarative layer rules. ``cli`` wires the stages.
"""

__version__ = "0.1.0"
