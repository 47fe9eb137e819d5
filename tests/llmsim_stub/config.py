import enum
import types


class ForwardMode(enum.IntEnum):
    EXTEND = 0
    DECODE = 1


# LLMSim's config classes for these model types copy text_config's keys to
# the top level and drop text_config (src/arch/config.py, Qwen3_5MoEConfig)
FLATTENS_TEXT_CONFIG = frozenset({"qwen3_5_moe"})


def model_config_from_dict(data: dict) -> types.SimpleNamespace:
    """``mc`` as LLMSim's ModelConfig.from_json builds it: every key of the
    JSON an attribute, nested dicts kept, text_config flattened where LLMSim does."""
    data = dict(data)
    if data.get("model_type") in FLATTENS_TEXT_CONFIG and isinstance(data.get("text_config"), dict):
        text = data.pop("text_config")
        data = {**text, **data}
    return types.SimpleNamespace(**data)
