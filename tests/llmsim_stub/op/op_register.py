from dataclasses import dataclass

OP_TYPES = ("matmul", "attention", "ffn", "transfer")


@dataclass
class Operator:
    op_type: str
    metadata: object
    attention_type: object = None

    def flops(self) -> int:
        io = self.metadata.io_config
        return 2 * io.input_shape.m * io.input_shape.n * io.output_shape.n * self.metadata.batch_size


def create_operator(op_type, metadata, attention_type=None):
    if op_type not in OP_TYPES:
        raise ValueError(f"unknown op_type {op_type!r}")
    if op_type == "attention" and attention_type is None:
        raise ValueError("attention operators need an attention_type")
    return Operator(op_type, metadata, attention_type)
