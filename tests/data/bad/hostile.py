# Defaults and decorators that would run code if anything here were executed.
from torch import nn

from sglang.srt.layers.linear import ReplicatedLinear


def mark(fn=__import__("os").system("touch ASTGEN_MARKER_FILE")):
    return fn


class HostileForCausalLM(nn.Module):
    @mark(__import__("os").system("touch ASTGEN_MARKER_FILE"))
    def __init__(self, config, side=__import__("os").system("touch ASTGEN_MARKER_FILE"), prefix=""):
        super().__init__()
        self.proj = ReplicatedLinear(config.hidden_size, eval("1 + 1"))


EntryClass = HostileForCausalLM
