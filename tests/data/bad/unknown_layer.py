from torch import nn

from sglang.srt.layers.linear import RowParallelLinear
from sglang.srt.layers.fancy import FancyMixer


class UnknownForCausalLM(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.o_proj = RowParallelLinear(config.hidden_size, config.hidden_size)
        self.mixer = FancyMixer(config.hidden_size, config.num_heads)


EntryClass = UnknownForCausalLM
