from tests.llmsim_stub.config import ForwardMode


class BaseModelArch:
    def __init__(self, model_config, schedule_config):
        self.model_config = model_config
        self.schedule_config = schedule_config
        self.operators: list = []
        self.attention_operators: dict = {}
        self.transfer_operators: list = []

    def build_operators(self) -> None:
        raise NotImplementedError

    def get_seq_length(self) -> int:
        sc = self.schedule_config
        return sc.max_seqlen if sc.mode == ForwardMode.EXTEND else sc.batch_size

    def _add_operator(self, op) -> None:
        self.operators.append(op)

    def _add_attention_operator(self, key, ops) -> None:
        self.attention_operators[key] = ops

    def _add_transfer_operator(self, op) -> None:
        self.transfer_operators.append(op)

    def get_kv_cache(self) -> float:
        return 0.0

    def get_kv_cache_per_gpu(self) -> float:
        return 0.0
