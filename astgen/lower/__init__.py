"""Stage 5, lower: operators with shapes, precision and guards (shapes); weights at a concrete config
(weights); the classification of an entry (classify); LLMSim's parallel layouts (layout)."""
