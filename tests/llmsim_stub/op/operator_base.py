import enum
from dataclasses import dataclass


class DataType(enum.Enum):
    INT8 = 1
    FP8 = 1
    FP16 = 2
    BF16 = 2
    FP32 = 4
    FP64 = 8


@dataclass
class Tensor:
    m: int
    n: int

    def size(self) -> int:
        return self.m * self.n


@dataclass
class OperatorIO:
    input_shape: Tensor
    output_shape: Tensor
    weight_shape: Tensor
    input_dtype: DataType = DataType.BF16
    output_dtype: DataType = DataType.BF16
    weight_dtype: DataType = DataType.BF16


@dataclass
class OperatorMetadata:
    name: str
    op_type: str
    description: str
    io_config: OperatorIO
    batch_size: int = 1
    num_layers: int = 1
    parallelization_dim: object = None
