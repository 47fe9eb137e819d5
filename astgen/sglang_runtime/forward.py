"""The forward tier of the sglang runtime oracle: run the model's own
``forward`` on meta tensors for one EXTEND or DECODE batch at one rank, and
record what it runs (schema: the ``forward`` table of an
``astgen.runtime/2`` answer).

Recorded: every matmul-like torch function with a weight argument (a
``TorchFunctionMode`` names parameters by identity, views too), every
attention core (the backend is a shape-only fake), every collective sglang's
group objects are asked for, and the routed experts' compute. Shape-only
fakes stand where sglang calls kernels that need a GPU or data; each says the
sglang line it replaces:

1. attention backend: published through ``forward_context`` as
   ``ModelRunner`` does (model_executor/forward_context.py); it records and
   returns ``[tokens, heads * v_head_dim]`` (base_attn_backend.py:333). A fake
   KV pool records the cache writes DeepSeek's prefill makes itself
   (forward_mha.py:606);
2. collectives: the group's methods (distributed/parallel_state.py) record
   and return the shape sglang expects; the DP-attention row copies
   (dp_attention.py:647, a triton kernel) are skipped;
3. experts: ``FusedMoE.run_moe_core`` (moe/fused_moe_triton/layer.py:1789);
   router, top-k, dispatch and combine stay sglang's;
4. block-FP8 linears: ``Fp8LinearMethod.w8a8_block_fp8_linear``
   (quantization/fp8.py:548, a triton GEMM);
5. fused ops take their native torch path (kernels/fused_op.py:660), rotary
   buffers move to meta, and MLA's ``w_kc`` / ``w_vc`` are made from
   ``kv_b_proj`` as post_load_weights does on CUDA (bf16, 128x128 block FP8,
   deepseek_common/deepseek_weight_loader.py:586);
6. the ForwardBatch is built directly (forward_batch_info.py), every DP rank
   holding the same batch.

What it cannot see: CUDA graphs (0.5.23 runs short prefills of MLA inside its
prefill graph on the absorbed path; eagerly sglang dispatches MHA), routing
(data dependent: tokens x top-k and their uniform share per rank are
recorded), kernels the GPU would pick (a fake group has no custom
all-reduce, so DP attention pads to the longest batch).
"""

from __future__ import annotations

import collections
import re
from typing import Any


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.param_names: dict[int, str] = {}

    def add(self, kind: str, **fields) -> None:
        self.events.append({"kind": kind, **fields})


REC = Recorder()


def _shape(t) -> list[int] | None:
    import torch

    if isinstance(t, torch.Tensor):
        return [int(d) for d in t.shape]
    return None


def _dt(t) -> str | None:
    import torch

    if isinstance(t, torch.Tensor):
        return str(t.dtype).removeprefix("torch.")
    return None


# ---- 1. matmuls on weights -------------------------------------------------


def make_matmul_mode():
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    Tensor = torch.Tensor
    MATMULS = {
        F.linear: "linear", torch.matmul: "matmul", Tensor.matmul: "matmul", Tensor.__matmul__: "matmul",
        Tensor.__rmatmul__: "rmatmul", torch.mm: "mm", Tensor.mm: "mm", torch.bmm: "bmm", Tensor.bmm: "bmm",
        torch.einsum: "einsum", torch.addmm: "addmm", Tensor.addmm: "addmm", torch.baddbmm: "baddbmm",
        torch._scaled_mm: "_scaled_mm",
    }

    class MatmulMode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            kind = MATMULS.get(func)
            if kind is not None:
                tensors = [a for a in list(args) + list(kwargs.values()) if isinstance(a, Tensor)]
                named = [(i, param_name(t)) for i, t in enumerate(tensors)]
                named = [(i, n) for i, n in named if n is not None]
                if named:
                    i, name = named[0]
                    weight = tensors[i]
                    others = [t for j, t in enumerate(tensors) if j != i]
                    x = others[0] if others else None
                    REC.add("matmul", op=kind, param=name, x=_shape(x), w=_shape(weight), out=_shape(out),
                            x_dtype=_dt(x), w_dtype=_dt(weight),
                            equation=args[0] if kind == "einsum" else None)
                else:
                    REC.add("matmul_act", op=kind, shapes=[_shape(t) for t in tensors], out=_shape(out),
                            where=current_module())
            return out

    return MatmulMode()


def param_name(t):
    name = REC.param_names.get(id(t))
    if name is None and getattr(t, "_base", None) is not None:
        name = REC.param_names.get(id(t._base))
        if name is not None:
            name += " (view)"
    return name


def caller() -> str | None:
    """The innermost sglang frame outside the communication plumbing."""
    import inspect

    skip = ("distributed/parallel_state.py", "distributed/communication_op.py", "/astgen/sglang_runtime/")
    for fr in inspect.stack()[2:]:
        f = fr.filename
        if "/sglang/" in f and not any(s in f for s in skip):
            return f"{f.split('/sglang/', 1)[1]}:{fr.lineno} {fr.function}"
    return None


MODULE_STACK: list[str] = []


def current_module() -> str | None:
    return MODULE_STACK[-1] if MODULE_STACK else None


def install_module_hooks(model) -> None:
    for name, mod in model.named_modules():
        def pre(m, a, name=name):
            MODULE_STACK.append(name)

        def post(m, a, o, name=name):
            if MODULE_STACK and MODULE_STACK[-1] == name:
                MODULE_STACK.pop()

        mod.register_forward_pre_hook(pre)
        mod.register_forward_hook(post)


# ---- 2. attention ------------------------------------------------------------


def patch_attn_dispatch(model) -> list[str]:
    """Record which forward method DeepSeek-style attention picks
    (deepseek_v2.py:2291 dispatch_attn_forward_method); unchanged otherwise."""
    try:
        from sglang.srt.models.deepseek_v2 import DeepseekV2AttentionMLA
    except Exception:  # noqa: BLE001
        return []
    orig = DeepseekV2AttentionMLA.dispatch_attn_forward_method
    if getattr(orig, "_fwd", False) or not any(isinstance(m, DeepseekV2AttentionMLA) for m in model.modules()):
        return []

    def dispatch(self, forward_batch):
        method = orig(self, forward_batch)
        REC.add("attn_method", where=current_module(), method=getattr(method, "name", str(method)),
                backend=getattr(self, "current_attention_backend", None))
        return method

    dispatch._fwd = True
    DeepseekV2AttentionMLA.dispatch_attn_forward_method = dispatch
    return ["DeepseekV2AttentionMLA.dispatch_attn_forward_method (recorded)"]


def make_fake_attn_backend(name=None):
    from sglang.srt.layers.attention.base_attn_backend import AttentionBackend

    class FakeAttnBackend(AttentionBackend):
        """Shape-only attention core (replaces the backend RadixAttention.forward
        reaches through get_attn_backend(), radix_attention.py:183)."""

        def __init__(self, name=None):
            self.token_to_kv_pool = FakeKVPool()
            self.req_to_token_pool = None
            # read first by DeepSeek's dispatch_attn_forward_method (deepseek_v2.py:2296)
            self.prefill_attention_backend_str = name
            self.decode_attention_backend_str = name

        def init_forward_metadata(self, forward_batch):
            pass

        def forward(self, q, k, v, layer, forward_batch, save_kv_cache=True, **kwargs):
            mode = forward_batch.forward_mode
            vdim = layer.v_head_dim
            nq = q.shape[0]
            REC.add("attention", layer=layer.layer_id, where=current_module(),
                    mode=mode.name, q=_shape(q), k=_shape(k), v=_shape(v),
                    extra={kk: _shape(vv) for kk, vv in kwargs.items() if _shape(vv) is not None},
                    tp_q_head_num=layer.tp_q_head_num, tp_k_head_num=layer.tp_k_head_num,
                    tp_v_head_num=layer.tp_v_head_num, qk_head_dim=layer.qk_head_dim, v_head_dim=vdim,
                    kv_lens=[int(x) for x in FORWARD_INFO["seq_lens"]],
                    q_lens=[int(x) for x in FORWARD_INFO["q_lens"]],
                    save_kv_cache=bool(save_kv_cache), dtype=_dt(q))
            return q.new_empty((nq, layer.tp_q_head_num * vdim))

        forward_extend = forward
        forward_decode = forward

    return FakeAttnBackend(name)


FORWARD_INFO: dict[str, Any] = {}


class FakeKVPool:
    """get_token_to_kv_pool() (forward_context.py:77) for the model code that
    writes the KV cache itself (DeepSeek MHA prefill: forward_mha.py:606
    _set_mla_kv_buffer). Writes are recorded, not stored."""

    def _rec(self, op, layer, *tensors):
        REC.add("kv_write", op=op, where=current_module(), layer=getattr(layer, "layer_id", None),
                shapes=[_shape(t) for t in tensors if t is not None], dtype=_dt(tensors[0]))

    def set_kv_buffer(self, layer, loc, k, v, *a, **kw):
        self._rec("set_kv_buffer", layer, k, v)

    def set_mla_kv_buffer(self, layer, loc, kv_a, k_pe, *a, **kw):
        self._rec("set_mla_kv_buffer", layer, kv_a, k_pe)

    def __getattr__(self, name):
        raise AttributeError(f"FakeKVPool.{name}: not faked (the model reads the KV cache)")

# ---- 3. collectives ---------------------------------------------------------


def patch_collectives() -> None:
    import torch
    from sglang.srt.distributed import parallel_state as ps

    cls = type(ps.get_world_group())

    def gname(self):
        return re.sub(r":\d+$", "", self.unique_name)

    def rec(self, kind, t, out=None, **kw):
        REC.add("collective", op=kind, group=gname(self), group_size=self.world_size, shape=_shape(t),
                out=_shape(out), dtype=_dt(t), where=current_module(), caller=caller(), **kw)

    def all_reduce(self, input_):
        if self.world_size > 1:
            rec(self, "all_reduce", input_, input_)
        return input_

    def all_gather(self, input_, dim=-1, output_tensor_list=None):
        if self.world_size == 1:
            return input_
        if output_tensor_list is not None:
            rec(self, "all_gather_list", input_)
            return None
        d = dim % input_.dim()
        out = torch.cat([input_] * self.world_size, dim=d)
        rec(self, "all_gather", input_, out, dim=d)
        return out

    def all_gather_into_tensor(self, output, input):
        rec(self, "all_gather_into_tensor", input, output)

    def all_gatherv(self, input_, sizes=None, output=None):
        rec(self, "all_gatherv", input_ if not isinstance(input_, list) else input_[0], output, sizes=sizes)
        def one(t):
            n = sum(sizes) if sizes else t.shape[0] * self.world_size
            return t.new_empty((n,) + tuple(t.shape[1:]))
        if isinstance(input_, list):
            return [one(t) for t in input_]
        return output if output is not None else one(input_)

    def reduce_scatter_tensor(self, output, input):
        rec(self, "reduce_scatter_tensor", input, output)
        return output

    def reduce_scatter_along_dim(self, input_, dim=-1):
        if self.world_size == 1:
            return input_
        d = dim % input_.dim()
        out = input_.narrow(d, 0, input_.shape[d] // self.world_size)
        rec(self, "reduce_scatter", input_, out, dim=d)
        return out

    def reduce_scatter(self, output, input_list):
        rec(self, "reduce_scatter_list", input_list[0], output)
        return output

    def reduce_scatterv(self, input_, output=None, sizes=None):
        n = sizes[self.rank_in_group] if sizes else input_.shape[0] // self.world_size
        out = output if output is not None else input_.new_empty((n,) + tuple(input_.shape[1:]))
        rec(self, "reduce_scatterv", input_, out, sizes=sizes)
        return out

    def all_to_all_single(self, output, input):
        rec(self, "all_to_all_single", input, output)

    def broadcast(self, input_, src=0):
        if self.world_size > 1:
            rec(self, "broadcast", input_, input_)
        return input_

    def quant_all_reduce(self, input_):
        rec(self, "quant_all_reduce", input_, input_)
        return input_

    for name, fn in dict(all_reduce=all_reduce, all_gather=all_gather,
                         all_gather_into_tensor=all_gather_into_tensor,
                         _all_gather_into_tensor=all_gather_into_tensor, all_gatherv=all_gatherv,
                         reduce_scatter_tensor=reduce_scatter_tensor,
                         _reduce_scatter_tensor=reduce_scatter_tensor,
                         reduce_scatter_along_dim=reduce_scatter_along_dim, reduce_scatter=reduce_scatter,
                         reduce_scatterv=reduce_scatterv, all_to_all_single=all_to_all_single,
                         broadcast=broadcast, quant_all_reduce=quant_all_reduce).items():
        setattr(cls, name, fn)

    # DP attention: the row copies into/out of the gathered buffer are a triton
    # kernel (dp_attention.py:647 memcpy -> memcpy_triton); no data here: no-op.
    from sglang.srt.layers import dp_attention as dpa

    dpa.memcpy = lambda dst, src, dim, offset, sz, offset_src: None

    def inplace_all_reduce(tensor, group_name):
        REC.add("collective", op="inplace_all_reduce", group=re.sub(r":\d+$", "", group_name), shape=_shape(tensor),
                out=_shape(tensor), dtype=_dt(tensor), where=current_module(), caller=caller())
    ps.inplace_all_reduce = inplace_all_reduce

    # direct torch.distributed calls (should not happen; record if they do)
    def td(name):
        def f(*a, **k):
            REC.add("collective", op="torch.distributed." + name, group=str(k.get("group")),
                    shape=_shape(a[0]) if a else None, dtype=_dt(a[0]) if a else None, where=current_module(),
                    caller=caller())
        return f
    for name in ("all_reduce", "all_gather_into_tensor", "reduce_scatter_tensor", "all_to_all_single",
                 "broadcast", "all_gather"):
        setattr(torch.distributed, name, td(name))


# ---- 1b. quantized linears (block FP8) --------------------------------------


def patch_quant_linears(model) -> list[str]:
    """Fp8LinearMethod.apply (quantization/fp8.py:1427) calls
    self.w8a8_block_fp8_linear (dispatch_w8a8_block_fp8_linear, fp8.py:548 ->
    fp8_utils.triton_w8a8_block_fp8_linear: triton per-token-group quant +
    triton/deep_gemm GEMM): no driver here. Replace the instance attribute with
    a shape-only GEMM that records like a matmul."""
    import torch

    patched = collections.Counter()
    for _, m in model.named_modules():
        qm = getattr(m, "quant_method", None)
        if qm is not None and getattr(qm, "w8a8_block_fp8_linear", None) is not None \
                and not getattr(qm, "_fwd_faked", False):
            def fake(input, weight, block_size, weight_scale, input_scale=None, bias=None, **kw):
                out_shape = [*input.shape[:-1], weight.shape[0]]
                dtype = input.dtype if input_scale is None else torch.bfloat16
                out = input.new_empty(out_shape, dtype=dtype)
                REC.add("matmul", op="w8a8_block_fp8", param=param_name(weight), x=_shape(input), w=_shape(weight),
                        out=_shape(out), x_dtype=_dt(input), w_dtype=_dt(weight),
                        w_scale=_shape(weight_scale), block=list(block_size), equation=None)
                return out
            qm.w8a8_block_fp8_linear = fake
            qm._fwd_faked = True
            patched[type(qm).__name__] += 1
    return [f"{k}.w8a8_block_fp8_linear x{v}" for k, v in patched.items()]


# ---- after-load state ---------------------------------------------------------


def buffers_to_meta(model) -> list[str]:
    """Rotary caches are real tensors on the cpu (standins.answer_device makes
    get_device() 'cpu'; rope_variant.py:373); positions are meta. Move every
    cpu buffer to meta (shape/dtype unchanged)."""
    moved = collections.Counter()
    for _, m in model.named_modules():
        for name, b in list(m._buffers.items()):
            if b is not None and b.device.type == "cpu":
                m._buffers[name] = b.to("meta")
                moved[f"{type(m).__name__}.{name}"] += 1
    return [f"{k} x{v}" for k, v in moved.items()]


def prepare_mla(model) -> list[str]:
    """What DeepseekV2 post_load_weights (deepseek_common/deepseek_weight_loader.py:586)
    does after loading, on the CUDA path for block-FP8 128x128 without
    SGLANG_USE_DEEPGEMM_BMM (default off): kv_b_proj.weight dequantized to bf16
    (block_quant_dequant), split into w_kc [H, nope, lora] and w_vc [H, lora, v]
    (as column-major views). Here shapes only; the names say where they come from."""
    import torch

    n = 0
    for path, m in model.named_modules():
        if hasattr(m, "kv_b_proj") and hasattr(m, "w_kc") and m.w_kc is None:
            w = m.kv_b_proj.weight
            wb = torch.empty(w.shape, dtype=torch.bfloat16, device="meta")
            w_kc, w_vc = wb.unflatten(0, (-1, m.qk_nope_head_dim + m.v_head_dim)).split(
                [m.qk_nope_head_dim, m.v_head_dim], dim=1)
            m.w_kc = w_kc.transpose(1, 2).contiguous().transpose(1, 2)
            m.w_vc = w_vc.contiguous().transpose(1, 2)
            REC.param_names[id(m.w_kc)] = f"{path}.kv_b_proj.weight[w_kc]"
            REC.param_names[id(m.w_vc)] = f"{path}.kv_b_proj.weight[w_vc]"
            n += 1
    return [f"MLA w_kc/w_vc from kv_b_proj (bf16) x{n}"] if n else []


# ---- 4. MoE experts ---------------------------------------------------------


def patch_moe() -> list[str]:
    """Shape-only expert compute: replaces FusedMoE.run_moe_core
    (moe/fused_moe_triton/layer.py:1786), i.e. quant_method.apply -> triton /
    native kernels that cannot run on meta. Dispatch, combine and the final
    all-reduce stay sglang's."""
    from sglang.srt.layers.moe.fused_moe_triton.layer import FusedMoE
    from sglang.srt.layers.moe.token_dispatcher.standard import StandardCombineInput

    def run_moe_core(self, dispatch_output):
        hs = dispatch_output.hidden_states
        topk = getattr(dispatch_output, "topk_output", dispatch_output)  # DeepEP's outputs carry topk_ids
        ids = getattr(topk, "topk_ids", None)
        w13 = getattr(self, "w13_weight", None)
        w2 = getattr(self, "w2_weight", None)
        fmt = dispatch_output.format.name if hasattr(dispatch_output, "format") else type(dispatch_output).__name__
        n_tok = int(hs.shape[0])
        top_k = int(ids.shape[-1]) if ids is not None else self.top_k
        local = int(self.num_local_experts)
        n_exp = int(self.num_experts)
        REC.add("moe", where=current_module(), dispatch=fmt, tokens=n_tok, hidden_in=_shape(hs),
                hs_dtype=_dt(hs), hs_scale=_shape(getattr(dispatch_output, "hidden_states_scale", None)),
                topk_ids=_shape(ids), top_k=top_k, num_experts=n_exp, local_experts=local,
                shared_fused=int(self.num_fused_shared_experts), moe_ep=int(self.moe_ep_size),
                moe_tp=int(self.moe_tp_size), hidden=int(self.hidden_size),
                inter_per_partition=int(self.intermediate_size_per_partition),
                w13=_shape(w13), w2=_shape(w2), w_dtype=_dt(w13),
                routed_slots=n_tok * top_k,
                routed_local_uniform=round(n_tok * top_k * local / max(n_exp + int(self.num_fused_shared_experts), 1), 1),
                quant_method=type(self.quant_method).__name__)
        out_h = int(w2.shape[1]) if w2 is not None and w2.dim() == 3 else int(self.hidden_size)
        return StandardCombineInput(hidden_states=hs.new_empty((n_tok, out_h), dtype=torch_dtype_of(hs)))

    FusedMoE.run_moe_core = run_moe_core

    # EP: the dispatcher builds its global->local expert map on get_device()
    # (cpu here: standins.answer_device), the topk ids are meta
    # (token_dispatcher/standard.py:232 and :94). Move the map to the ids' device.
    from sglang.srt.layers.moe.token_dispatcher import standard

    orig_map = standard._map_topk_ids_to_local_experts
    standard._map_topk_ids_to_local_experts = lambda ids, mapping: orig_map(ids, mapping.to(ids.device))
    return ["FusedMoE.run_moe_core", "standard._map_topk_ids_to_local_experts (map -> meta)"]


def patch_deepep() -> list[str]:
    """DeepEP's dispatch and combine (token_dispatcher/deepep.py:1041-1085),
    whose kernels need GPUs: recorded as the collectives ``dispatch`` and
    ``combine`` of the rank's rows (``copies``: top-k), shape-only. The
    dispatched tokens stay the rank's own rows with their top-k ids, so the
    experts' compute is recorded as without EP's all-to-all (the uniform
    share of the routed rows per local expert); combine returns the rank's
    rows. Only for --moe-a2a-backend deepep layouts."""
    from sglang.srt.layers.moe.token_dispatcher import deepep

    def dispatch(self, hidden_states, topk_output):
        from sglang.srt.runtime_context import get_parallel

        ids = getattr(topk_output, "topk_ids", None)
        self._astgen_rows = rows = int(hidden_states.shape[0])
        REC.add("collective", op="dispatch", group="deepep", group_size=0, shape=_shape(hidden_states),
                out=_shape(hidden_states), dtype=_dt(hidden_states), where=current_module(), caller=caller(),
                copies=int(ids.shape[-1]) if ids is not None else 1)
        # every EP rank sends its rows' top-k copies: under uniform routing this rank's experts
        # receive the share of all of them, as if its own rows were ep_size times as many
        ep = max(1, int(get_parallel().moe_ep_size))
        received = hidden_states.new_empty((rows * ep, hidden_states.shape[-1]))
        received_ids = ids.new_empty((rows * ep, ids.shape[-1])) if ids is not None else None
        weights = getattr(topk_output, "topk_weights", None)
        received_weights = weights.new_empty((rows * ep, weights.shape[-1])) if weights is not None else None
        return deepep.DeepEPNormalDispatchOutput(received, None, received_ids, received_weights, [])

    def combine(self, combine_input):
        hs = combine_input.hidden_states if hasattr(combine_input, "hidden_states") else combine_input[0]
        rows = getattr(self, "_astgen_rows", int(hs.shape[0]))
        out = hs.new_empty((rows, hs.shape[-1]))
        REC.add("collective", op="combine", group="deepep", group_size=0, shape=_shape(out), out=_shape(out),
                dtype=_dt(hs), where=current_module(), caller=caller())
        return out

    deepep.DeepEPDispatcher.dispatch = dispatch
    deepep.DeepEPDispatcher.combine = combine
    # DeepEPMoE's expert compute (ep_moe/layer.py:278-305) is the GPU kernels' too: the
    # same shape-only record as FusedMoE's (patch_moe, applied first)
    from sglang.srt.layers.moe.ep_moe.layer import DeepEPMoE
    from sglang.srt.layers.moe.fused_moe_triton.layer import FusedMoE

    DeepEPMoE.run_moe_core = FusedMoE.run_moe_core
    return ["DeepEPDispatcher.dispatch / .combine (recorded, shape-only)", "DeepEPMoE.run_moe_core"]


def torch_dtype_of(hs):
    import torch

    return hs.dtype if hs.dtype in (torch.bfloat16, torch.float16, torch.float32) else torch.get_default_dtype()


# ---- native paths for fused ops -------------------------------------------


def force_native(model) -> list[str]:
    from sglang.kernels.fused_op import BaseFusedOp

    forced = collections.Counter()
    for _, m in model.named_modules():
        if isinstance(m, BaseFusedOp):
            m._forward_method = m.forward_native
            forced[type(m).__name__] += 1
    return [f"{k} x{v}" for k, v in sorted(forced.items())]


# --------------------------------------------------------------------------
# forward batch
# --------------------------------------------------------------------------


def make_forward_batch(mode: str, tokens: int, batch: int, context_len: int):
    import torch
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch, ForwardMode

    dev = "meta"
    if mode == "extend":
        bs = batch
        per = tokens // bs
        q_lens = [per] * bs
        prefix = [0] * bs
        seq = [p + q for p, q in zip(prefix, q_lens)]
        fm = ForwardMode.EXTEND
    else:
        bs = batch
        q_lens = [1] * bs
        seq = [context_len] * bs
        prefix = [s - 1 for s in seq]
        fm = ForwardMode.DECODE
    n = sum(q_lens)
    FORWARD_INFO.update(seq_lens=seq, q_lens=q_lens, num_tokens=n, batch=bs)
    i64 = dict(dtype=torch.int64, device=dev)
    fb = ForwardBatch(
        forward_mode=fm, batch_size=bs,
        input_ids=torch.empty(n, **i64), req_pool_indices=torch.empty(bs, **i64),
        seq_lens=torch.empty(bs, **i64), out_cache_loc=torch.empty(n, **i64),
        seq_lens_sum=sum(seq), seq_lens_cpu=torch.tensor(seq), positions=torch.empty(n, **i64),
    )
    if fm == ForwardMode.EXTEND:
        fb.extend_num_tokens = n
        fb.extend_seq_lens = torch.empty(bs, **i64)
        fb.extend_prefix_lens = torch.empty(bs, **i64)
        fb.extend_start_loc = torch.empty(bs, **i64)
        fb.extend_seq_lens_cpu = q_lens
        fb.extend_prefix_lens_cpu = prefix
        fb.extend_logprob_start_lens_cpu = [q for q in q_lens]
    from sglang.srt.model_executor.forward_batch_info import CaptureHiddenMode
    setup_dp(fb, n, fm)
    fb.return_logprob = False
    fb.capture_hidden_mode = CaptureHiddenMode.NULL
    fb.spec_algorithm = _spec_none()
    return fb


def _spec_none():
    from sglang.srt.speculative.spec_info import SpeculativeAlgorithm
    return SpeculativeAlgorithm.NONE


def setup_dp(fb, n: int, fm) -> None:
    """What ModelRunner._prepare_eager_forward_batch -> ForwardBatch.prepare_mlp_sync_batch
    (forward_batch_info.py:1753) publishes when MLP sync is on (DP attention),
    for every DP rank holding the same batch (so no padding): the per-rank token
    counts, the padding mode, the gathered-buffer length (set_dp_buffer_len_from_batch).
    The gathered buffer's metadata is init_dp_gathered_buffer's (dp_attention.py:486)
    on the meta device."""
    import torch
    from sglang.srt.layers import dp_attention as dpa
    from sglang.srt.runtime_context import get_parallel

    FORWARD_INFO["dp"] = None
    if not dpa.is_dp_attention_enabled():
        return
    ctx = get_parallel()
    dp = int(ctx.attn_dp_size)
    attn_tp = int(ctx.attn_tp_size)
    per = -(-n // attn_tp) * attn_tp
    counts = [per] * dp
    fb.is_extend_in_batch = fm.is_extend()
    fb.global_num_tokens_cpu = list(counts)
    fb.global_num_tokens_for_logprob_cpu = [fb.batch_size if fm.is_decode() else 1] * dp
    fb.global_num_tokens_gpu = torch.empty(dp, dtype=torch.int64, device="meta")
    fb.global_num_tokens_for_logprob_gpu = torch.empty(dp, dtype=torch.int64, device="meta")
    dpa._DpGatheredBufferWrapper.set_metadata(hidden_size=FORWARD_INFO["hidden"], dtype=FORWARD_INFO["dtype"],
                                              device=torch.device("meta"))
    mode = dpa.DpPaddingMode.get_dp_padding_mode(fb.is_extend_in_batch, counts)
    fb.dp_padding_mode = mode
    fb.global_dp_buffer_len = max(counts) * dp if mode.is_max_len() else sum(counts)
    fb.global_num_tokens_padded_cpu = counts
    fb.attn_tp_sequence_sharded = False
    dpa.set_dp_buffer_len_from_batch(fb)
    dpa.set_is_extend_in_batch(fb.is_extend_in_batch)
    FORWARD_INFO["dp"] = {"dp_size": dp, "global_num_tokens": counts, "padding": mode.name,
                          "global_dp_buffer_len": fb.global_dp_buffer_len}


# --------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------


def record_forward(model, mode: str, tokens: int, batch: int = 1, context_len: int = 4096,
                   attention_backend: str | None = None) -> dict[str, Any]:
    import torch
    from sglang.srt.model_executor.forward_context import (
        ForwardContext,
        forward_context,
    )
    from sglang.srt.model_executor.runner_utils.forward_batch import set_forward_batch

    REC.events.clear()
    REC.param_names = {id(p): n for n, p in model.named_parameters()}
    for n, b in model.named_buffers():
        REC.param_names.setdefault(id(b), "buffer:" + n)
    forced = force_native(model)
    patch_collectives()
    patched = patch_moe() + patch_deepep() + patch_quant_linears(model) + buffers_to_meta(model) + prepare_mla(model)
    install_module_hooks(model)
    FORWARD_INFO["hidden"] = int(model.config.hidden_size)
    FORWARD_INFO["dtype"] = next(p.dtype for p in model.parameters() if p.is_floating_point() and p.element_size() > 1)
    fb = make_forward_batch(mode, tokens, batch, context_len)
    patched += patch_attn_dispatch(model)
    backend = make_fake_attn_backend(attention_backend)
    ctx = ForwardContext(attn_backend=backend)
    with torch.no_grad(), forward_context(ctx, forward_batch=fb), set_forward_batch(fb), make_matmul_mode():
        out = model.forward(fb.input_ids, fb.positions, fb)
    logits = getattr(out, "next_token_logits", None)
    return {"mode": mode, "num_tokens": FORWARD_INFO["num_tokens"], "batch": FORWARD_INFO["batch"],
            "seq_lens": FORWARD_INFO["seq_lens"], "dp": FORWARD_INFO["dp"], "forced_native": forced, "patched": patched,
            "logits": _shape(logits), "events": REC.events}


# --------------------------------------------------------------------------
# summarizing
# --------------------------------------------------------------------------

_LAYER = re.compile(r"\.layers\.(\d+)(?=\.|$|\s)")


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    def key_of(name):
        return _LAYER.sub(".layers.*", name or "")

    def layer_of(name):
        m = _LAYER.search(name or "")
        return int(m.group(1)) if m else None

    groups: dict[tuple, dict] = {}
    order = []
    for e in doc["events"]:
        if e["kind"] == "matmul":
            k = ("matmul", key_of(e["param"]), e["op"], tuple(e["x"] or ()), tuple(e["w"]), tuple(e["out"] or ()),
                 e["w_dtype"])
            x = e["x"] or [0]
            B = 1
            if e["op"] in ("bmm", "baddbmm") or (e["op"] == "matmul" and len(e["w"]) == 3):
                B, M = x[0], x[-2]  # batched: [B, M, K] x [B, K, N]
            else:
                M = 1
                for d in x[:-1]:
                    M *= d
            K = x[-1]
            N = (e["out"] or [0])[-1]
            desc = {"param": key_of(e["param"]), "op": e["op"], "B": B, "M": M, "K": K, "N": N,
                    "x": e["x"], "w": e["w"], "out": e["out"], "x_dtype": e["x_dtype"], "w_dtype": e["w_dtype"]}
        elif e["kind"] == "matmul_act":
            k = ("matmul_act", key_of(e["where"]), e["op"], str(e["shapes"]), str(e["out"]))
            desc = {"where": key_of(e["where"]), "op": e["op"], "shapes": e["shapes"], "out": e["out"]}
        elif e["kind"] == "attention":
            k = ("attention", key_of(e["where"]) or "", tuple(e["q"]), str(e["k"]), str(e["v"]), e["tp_q_head_num"],
                 e["tp_k_head_num"], e["qk_head_dim"], e["v_head_dim"], str(e["extra"]))
            desc = {x: e[x] for x in ("where", "mode", "q", "k", "v", "extra", "tp_q_head_num", "tp_k_head_num",
                                      "tp_v_head_num", "qk_head_dim", "v_head_dim", "dtype")}
            desc["where"] = key_of(e["where"])
            desc["kv_lens"] = e["kv_lens"] if len(set(e["kv_lens"])) > 1 else f"{len(e['kv_lens'])} x {e['kv_lens'][0]}"
            desc["q_lens"] = e["q_lens"] if len(set(e["q_lens"])) > 1 else f"{len(e['q_lens'])} x {e['q_lens'][0]}"
        elif e["kind"] == "collective":
            k = ("collective", e["op"], e["group"], str(e["shape"]), str(e.get("out")), key_of(e.get("where")),
                 e.get("caller"))
            desc = {x: e.get(x) for x in ("op", "group", "group_size", "shape", "out", "dtype", "dim", "sizes",
                                          "caller")
                    if e.get(x) is not None}
            desc["where"] = key_of(e.get("where"))
        elif e["kind"] == "moe":
            k = ("moe", key_of(e["where"]), str(sorted((x, str(y)) for x, y in e.items() if x not in ("where", "layer"))))
            desc = {x: y for x, y in e.items() if x not in ("kind", "layer")}
            desc["where"] = key_of(e["where"])
        elif e["kind"] in ("kv_write", "attn_method"):
            k = (e["kind"], key_of(e.get("where")), str({x: y for x, y in e.items() if x not in ("where", "layer")}))
            desc = {x: y for x, y in e.items() if x not in ("kind", "layer")}
            desc["where"] = key_of(e.get("where"))
        else:
            k = (e["kind"], str(e))
            desc = e
        if k not in groups:
            groups[k] = {"kind": k[0], **desc, "count": 0, "layers": set()}
            order.append(k)
        g = groups[k]
        g["count"] += 1
        name = e.get("param") or e.get("where")
        if layer_of(name) is not None:
            g["layers"].add(layer_of(name))
    rows = []
    for k in order:
        g = groups[k]
        layers = sorted(g.pop("layers"))
        if layers:
            g["layers"] = f"{layers[0]}..{layers[-1]} ({len(layers)})" if layers == list(
                range(layers[0], layers[-1] + 1)) else layers
        rows.append(g)
    return {x: doc[x] for x in doc if x != "events"} | {"table": rows}
