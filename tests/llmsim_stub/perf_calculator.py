"""The stand-in's performance calculator: LLMSim's conventions, as its
src/arch/perf_calculator.py and op classes compute them (read from its
public repository; restated here so that CI needs no LLMSim checkout).

- every key of ``attention_operators`` is summed: a module must register only
  the attention cores that run in its forward mode;
- precision is the weight dtype's byte width: 1 byte takes the INT8 MAC
  rate, 4 the FP32 rate, anything else BF16; memory traffic follows the widths;
- a transfer takes ``bytes / op._bandwidth_gb_s`` when the operator carries
  that attribute, else the DMA bandwidth for operators named exactly
  ``dispatch`` / ``combine``, else the link bandwidth;
- an operator's time is ``(max(compute, memory) + transfer) * num_layers``;
  TTFT / TPOT is their sum.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hardware:
    """LLMSim's hardware_config/h800.json."""

    hbm_tb_s: float = 3.35
    dma_gb_s: float = 85.0
    dma_decode_gb_s: float = 18.58
    link_gb_s: float = 400.0
    mac_int8_tflops: float = 1979.0
    mac_fp32_tflops: float = 989.0
    mac_bf16_tflops: float = 989.0


H800 = Hardware()


def _mac(hw: Hardware, width: int) -> float:
    if width == 1:
        return hw.mac_int8_tflops
    if width == 4:
        return hw.mac_fp32_tflops
    return hw.mac_bf16_tflops


def _io_bytes(md) -> int:
    io = md.io_config
    b = md.batch_size
    return (io.input_shape.size() * b * io.input_dtype.value + io.weight_shape.size() * b * io.weight_dtype.value
            + io.output_shape.size() * b * io.output_dtype.value)


def operator_time_us(op, hw: Hardware = H800) -> float:
    """One operator, all its layers, in microseconds."""
    md = op.metadata
    io = md.io_config
    compute = memory = transfer = 0.0
    if md.op_type == "transfer":
        bandwidth = getattr(op, "_bandwidth_gb_s", None)
        if bandwidth is None:
            bandwidth = hw.dma_decode_gb_s if md.name in ("dispatch", "combine") else hw.link_gb_s
        transfer = io.input_shape.size() * md.batch_size * io.input_dtype.value / bandwidth / 1000.0
    elif md.op_type == "attention":
        # LLMSim's legacy MAC formula (attn_op.py) and its HBM time
        count = io.input_shape.m * io.input_shape.n * io.output_shape.n * md.batch_size
        compute = 2 * count / 500.0 / 1e6 * io.weight_dtype.value
        if md.name == "qkv":  # P.V of fused attention: V read, output written (attn_op.py)
            load = io.weight_shape.size() * md.batch_size
            store = io.input_shape.m * io.weight_shape.n * md.batch_size
        else:
            load, store = (io.input_shape.size() + io.weight_shape.size()) * md.batch_size, 0
        memory = (load * io.input_dtype.value + store * io.output_dtype.value) / hw.hbm_tb_s / 1e6
    else:
        flops = 2.0 * io.input_shape.m * io.input_shape.n * io.output_shape.n * md.batch_size
        compute = flops / (_mac(hw, io.weight_dtype.value) * 1e6)
        memory = _io_bytes(md) / hw.hbm_tb_s / 1e6
    return (max(compute, memory) + transfer) * md.num_layers


def forward_time_ms(arch, hw: Hardware = H800) -> float:
    """TTFT (EXTEND) or TPOT (DECODE) of a built arch, as LLMSim sums it."""
    ops = list(arch.operators) + [o for ops in arch.attention_operators.values() for o in ops]
    ops += list(arch.transfer_operators)
    return sum(operator_time_us(op, hw) for op in ops) / 1000.0
