from torch import nn


class BrokenForCausalLM(nn.Module):
    def __init__(self, config, quant_config=None, prefix=""):
        super().__init__()
        self.proj = config.hidden_size +* 2


EntryClass = BrokenForCausalLM
