"""Stage 6b, emit (the package): the emitted modules as one Python package.

``gen -o DIR``, ``scan -o DIR`` and ``gen --llmsim DIR`` write the same
package: one ``<stem>_model_arch.py`` per sglang model file (:mod:`astgen.emit.modules`),
the helpers they share once in ``_astgen.py`` (operators, weight precision,
nested configs, the KV-cache methods' base class), and an ``__init__`` that
maps every module's model types and architecture names to its arch classes.
Both package files are a function of the LLMSim import root and the rules
alone, never of which modules are present, so writing one model's module
into a package leaves them as they are, and ``astgen check`` compares them
like any module.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from astgen import __version__
from astgen import expr as E
from astgen.atomic import write_atomic
from astgen.emit.pysource import LINE_LENGTH, block, show, statement
from astgen.forward.run import IS_DECODE, absorbed_test
from astgen.rules import SWITCH, LayerRule, Rules, RulesError

HELPERS = "_astgen.py"  # the helpers' module, beside the model modules
# A module's operator table: what astgen traced, one JSON record per operator,
# which `astgen check` reads back (never run). Inside the module text as the
# pipeline makes it (after OP_MARK), in a file of its own beside the module
# once written (TABLE_SUFFIX), so that the module holds code alone.
OP_MARK = "# astgen-op: "
TABLE_SUFFIX = ".ops.jsonl"
INIT = "__init__.py"
PACKAGE_FILES = (INIT, HELPERS)
MODULE_GLOB = "*_model_arch.py"

# what a model module imports from the helpers' module, by the name it uses
EXPORTS = ("Arch", "Operators", "as_config", "as_ints", "coalesce", "model_dtype", "nonzero_indices", "sub_config",
           "weight_dtype_of", "zero_indices")


def package_files(import_root: str, rules: Rules) -> dict[str, str]:
    """The package's own files (name -> source), beside its model modules."""
    return {INIT: init_source(), HELPERS: helpers_source(import_root, rules)}


def write_package(out_dir: Path, modules: dict[str, str], import_root: str, rules: Rules) -> list[Path]:
    """Write ``modules`` (file name -> source, operator table included) and
    the package files into ``out_dir``, each atomically; returns the paths
    written."""
    written = []
    for name, source in sorted(modules.items()):
        written += write_module(Path(out_dir), name, source)
    for name, source in sorted(package_files(import_root, rules).items()):
        write_atomic(Path(out_dir) / name, source)
        written.append(Path(out_dir) / name)
    return written


def table_name(module: str) -> str:
    """``qwen3_model_arch.py`` -> ``qwen3_model_arch.ops.jsonl``."""
    return module.removesuffix(".py") + TABLE_SUFFIX


def join_module(code: str, records: list[str]) -> str:
    """A module's text as the pipeline keeps it: its code, a blank line and
    one OP_MARK line per operator record (JSON)."""
    return code + ("\n" + "".join(OP_MARK + r + "\n" for r in records) if records else "")


def split_module(source: str) -> tuple[str, list[str]]:
    """(code, records): :func:`join_module` undone."""
    at = source.find("\n" + OP_MARK)
    if at < 0:
        return source, []
    return source[:at], [line[len(OP_MARK):] for line in source[at + 1:].splitlines() if line.startswith(OP_MARK)]


def module_files(name: str, source: str) -> dict[str, str]:
    """A module as written: its code (``name``) and its operator table."""
    code, records = split_module(source)
    return {name: code, table_name(name): "".join(r + "\n" for r in records)}


def write_module(out_dir: Path, name: str, source: str) -> list[Path]:
    """Write one module's files atomically; returns their paths."""
    paths = []
    for file, text in module_files(name, source).items():
        write_atomic(out_dir / file, text)
        paths.append(out_dir / file)
    return paths


def remove_module(directory: Path, name: str) -> None:
    for file in (name, table_name(name)):
        (directory / file).unlink(missing_ok=True)


def read_module(directory: Path, name: str) -> str | None:
    """A written module as the pipeline makes it: its code, then its
    operator table (none when the table file is missing)."""
    try:
        code = (directory / name).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        table = (directory / table_name(name)).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return code
    return join_module(code, [line for line in table.splitlines() if line])


def init_source() -> str:
    return '''\
"""LLMSim model_arch modules emitted by astgen (`astgen gen`); do not edit.

MODEL_TYPES maps a Hugging Face model_type to an arch class and ARCHITECTURES
an `architectures` name, over every *_model_arch module of this package (the
first module by name wins a key two of them serve). _astgen.py holds the
helpers the modules share."""

import importlib
import pkgutil

MODEL_TYPES = {}
ARCHITECTURES = {}
for _name in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _name.endswith("_model_arch"):
        _module = importlib.import_module(f"{__name__}.{_name}")
        for _key, _arch in _module.MODEL_TYPES.items():
            MODEL_TYPES.setdefault(_key, _arch)
        for _key, _arch in _module.ARCHITECTURES.items():
            ARCHITECTURES.setdefault(_key, _arch)
'''


_SOURCES: dict[tuple[str, str, str], str] = {}
# how sglang's parallelism reads in LLMSim's schedule (another family's: rules/<flavour>.toml `mapping`)
SGLANG_MAPPING = ("sglang -> LLMSim: attention TP -> sc.tp_size, DP attention -> sc.dp_size, "
                  "--tp -> sc.tp_size * sc.dp_size, --ep -> sc.ep_size, deepep -> sc.deepep, "
                  "--moe-dense-tp-size 1 -> sc.enable_moe_dense_fully_dp; one pipeline stage")


def families(rules: Rules) -> list[Rules]:
    """sglang's rules and each other source family's (rules/<flavour>.toml),
    as read: the package serves modules of every family alike."""
    sglang = rules.base or rules.unbound or rules
    return [sglang] + [f.unbound or f for f in (sglang.for_flavour(name) for name in sorted(sglang.flavours))]


def helpers_source(import_root: str, rules: Rules) -> str:
    """``_astgen.py``: formatted once per import root and rules digest; the
    same whichever family's rules it is given (a package may hold modules
    of sglang and of mini-sglang)."""
    key = (import_root, rules.digest)  # one digest covers every family's rules
    if key not in _SOURCES:
        every = families(rules)
        header = "\n".join([
            f"# Generated by astgen {__version__} (rules {rules.version}, {rules.digest}); regenerate with"
            " `astgen gen`.",
            '"""What the model_arch modules of this package share: their operators',
            "(matmuls, attention cores and collectives at LLMSim's bandwidths, and the",
            "operators of the rules/ layers the modules add with one call), the",
            "precision of a module's weights under a checkpoint's quantization_config,",
            "nested configs read by attribute, and the KV-cache methods.",
            "",
            *[line for family in every for line in textwrap.wrap(
                f"{family.mapping or SGLANG_MAPPING}.", 79, break_on_hyphens=False, break_long_words=False)],
            "Weights at the checkpoint's precision (quantization_config, torch_dtype).",
            '"""',
        ])
        methods = "\n".join(f"    {kind} = partialmethod(transfer, {show(E.Const(kind))})"
                            for kind in sorted(rules.execution.bandwidth))
        helpers = _HELPERS.replace("@COLLECTIVES@", methods).replace("@RULE_HELPERS@", rule_methods(every)) \
            .replace("@BOUNDARY@", _boundary_method(every) + _absorbed_method(every)).replace("@DERIVED@", _by_family(every) + "\n\n" + _local_table(every))
        _SOURCES[key] = block(header + "\n\n" + _constants(import_root, rules) + "\n\n" + helpers)
    return _SOURCES[key]


def rule_methods(every: list[Rules]) -> str:
    """One method of ``Operators`` per layer rule with a ``helper``
    (rules/layers.toml, and another family's rules): the rule's operators, as
    shapes.py derives them, from the instance's arguments; the emitted
    modules call it once per instance. And one per layer-boundary role."""
    chosen: dict[str, str] = {}
    for rules in every:
        for name in sorted(rules.layers):
            rule = rules.layers[name]
            if rule.helper:
                text = _rule_method(rule)
                if chosen.setdefault(rule.helper, text) != text:  # `same_as` rules share their base's
                    raise RulesError(f"layers.{name}.helper: {rule.helper} is another rule's helper")
    execution = every[0].execution
    roles = [_role_method(role, steps, execution.rows_from.get(role)) for role, steps in sorted(execution.roles.items())]
    return "\n".join([text for _, text in sorted(chosen.items())] + ([_BOUNDARY_INPUTS] if roles else []) + roles)


# what every layer-boundary role method starts from (_role_method)
_BOUNDARY_INPUTS = '''
    def _boundary_inputs(self, seq_len, rows=None, ffn=None, local=None, rsv=None, maxlen=None):
        """A layer-boundary role's inputs: the rows it starts from (default seq_len;
        ffn_exit's, those ffn_entry leaves the FFN: rules/execution.toml [forward.rows_from]),
        whether the FFN runs on the rank's own rows (local; by default as an FFN of
        kind ffn does, rules/execution.toml [forward.local]), whether the FFN's sum
        returns with a reduce-scatterv (rsv) and whether DP attention pads every
        replica to the longest (maxlen), by default as the arch derives them
        (Arch.boundary_return)."""
        rows = seq_len if rows is None else rows
        if local is None:
            local = LOCAL[ffn](self.arch.schedule_config) if ffn in LOCAL else False
        if rsv is None or maxlen is None:
            derived = self.arch.boundary_return()
            rsv = derived[0] if rsv is None else rsv
            maxlen = derived[1] if maxlen is None else maxlen
        return rows, local, rsv, maxlen'''


def _role_method(role: str, steps, rows_from: str | None = None) -> str:
    """The methods of a layer-boundary role (rules/execution.toml
    [forward.roles]): ``<role>`` runs its steps in order, each a collective
    when its condition holds, the rows it leaves for the next (``then``);
    ``<role>_rows``, where it can leave other rows than seq_len, only
    follows the rows, to the FFN's. ``rows_from``: the role whose rows it
    starts from unless given ([forward.rows_from])."""
    head = [f"    def {role}(self, seq_len, hidden, *, prefix=\"\", layers=1, **inputs):",
            f'        """The {role} role of a layer boundary (rules/execution.toml [forward.roles.{role}]):',
            '        its steps, named prefix + the step\'s name, on _boundary_inputs\' inputs."""',
            *([f'        if "rows" not in inputs:  # the rows {rows_from} leaves the FFN ([forward.rows_from])',
               f'            inputs["rows"] = self.{rows_from}_rows(seq_len, **inputs)'] if rows_from else []),
            "        rows, local, rsv, maxlen = self._boundary_inputs(seq_len, **inputs)"]
    rows_head = [f"    def {role}_rows(self, seq_len, ffn=None, **inputs):",
                 f'        """The rows the {role} role leaves an FFN of kind ffn: {role}\'s, adding nothing."""',
                 "        rows, local, rsv, maxlen = self._boundary_inputs(seq_len, ffn=ffn, **inputs)"]
    common = ["        sc = self.arch.schedule_config"]
    methods = []
    # the rows-only method where the role can leave other rows than seq_len (the run stage spells them with it)
    leaves_other_rows = any(step.then is not None and step.then != E.Name("seq_len") for step in steps)
    for lines, add in ((head, True), *([(rows_head, False)] if leaves_other_rows else [])):
        lines = lines + common
        for step in steps:
            body = []
            if step.collective and add:
                body.append(f'self.{step.collective}(prefix + "{step.name}", {show(step.rows)}, hidden, layers)')
            if step.then is not None:
                body.append(f"rows = {show(step.then)}")
            if not body:
                continue
            if step.when == E.TRUE:
                lines += [f"        {b}" for b in body]
            else:
                lines += [f"        if {show(step.when)}:", *(f"            {b}" for b in body)]
        methods.append("\n".join(lines + ([] if add else ["        return rows"])))
    return "\n" + "\n\n".join(methods)


def _one_for_all(every: list[Rules], get, where: str):
    """What every source family's rules say of ``get`` (those that say
    nothing left out), which the package's one helper module states once."""
    values = {get(rules) for rules in every} - {None}
    if len(values) > 1:
        raise RulesError(f"{where}: the source families' rules differ")
    return values.pop() if values else None


def _boundary_method(every: list[Rules]) -> str:
    """``Arch.boundary_return``: rsv and maxlen of a model's layer boundaries
    from its ``boundary_reduction`` at "auto" and --boundary-reduction, as
    the run stage derives them (rules/execution.toml [boundary_reduction];
    astgen.forward.run._boundary_return)."""
    table = _one_for_all(every, lambda rules: rules.execution.boundary_reduction, "execution.boundary_reduction")
    lines = ["    def boundary_return(self):",
             '        """(rsv, maxlen) of the layer boundaries (rules/execution.toml',
             "        [boundary_reduction]): whether an FFN's sum returns with a reduce-scatterv,",
             '        and whether DP attention pads every replica to the longest."""']
    if table is None:
        return "\n".join(lines + ["        return False, False"])
    when = {name: show(E.replace_all(e, {E.Name("is_decode"): E.Compare("==", E.Name("sc.mode"),
                                                                          E.Name("ForwardMode.DECODE"))}))
            for name, e in (("rsv", table.rsv_when), ("maxlen", table.maxlen_when))}
    return "\n".join(lines + [
        "        if self.boundary_reduction is None:",
        "            return False, False",
        "        sc = self.schedule_config",
        '        chosen = self.switch("boundary_reduction")',
        '        strategy = self.boundary_reduction if chosen == "auto" else chosen',
        f'        return strategy in ("rsv", "rs+rsv") and ({when["rsv"]}), {when["maxlen"]}'])


def _absorbed_method(every: list[Rules]) -> str:
    """``Arch.mla_absorbed``: whether an MLA attention runs its absorbed path
    on a chunk of seq_len tokens, as the run stage derives it (rules/
    execution.toml [mla] absorbed_extend; astgen.forward.run.absorbed_test).
    Only modules of sglang versions whose prefill CUDA graph pins the path
    call it; the others test DECODE alone."""
    rules = every[0]
    absorbed = rules.execution.mla_absorbed_extend
    if absorbed is None:
        return ""
    test = E.replace_all(absorbed_test(absorbed), {
        IS_DECODE: E.Compare("==", E.Name("sc.mode"), E.Name("ForwardMode.DECODE")),
        rules.execution.prefill_chunk: E.Name("chunk")})
    lines = statement(f"return {show(_switches_read(test, 'self'))}", 8)
    return "\n".join([
        "", "",
        "    def mla_absorbed(self, seq_len):",
        '        """Whether MLA attention runs its absorbed path on a chunk of seq_len',
        "        tokens (rules/execution.toml [mla] absorbed_extend): in DECODE, and in an",
        f"        EXTEND chunk prefill's CUDA graph captures (sglang {absorbed.since} on: the modules",
        '        of earlier versions test DECODE alone)."""',
        "        sc = self.schedule_config",
        *(["        chunk = self.prefill_chunk()"] if "chunk" in E.free_names(test) else []),
        *lines])


def _switches_read(e: E.Expr, arch: str, sc: str = "") -> E.Expr:
    """Rules text with each ``switch.X`` read as the emitted arch reads it:
    ``arch.switch("X")`` (its schedule ``sc``'s when given)."""
    return E.replace_all(e, {x: E.Call(f"{arch}.switch", (E.Const(x.name), *([E.Name(sc)] if sc else [])))
                             for x in E.walk(e) if isinstance(x, E.Attr) and x.obj == E.Name(SWITCH)})


def _rule_method(rule: LayerRule) -> str:
    def text(e: E.Expr) -> str:
        return show(_switches_read(e, "self.arch"))

    required = [name for name in rule.inputs if name not in rule.defaults]
    optional = [f"{name}={text(rule.defaults[name])}" for name in rule.inputs if name in rule.defaults]
    # the inputs without a default by position, as sglang's constructor takes
    # them (ParallelLMHead(config.vocab_size, config.hidden_size, ...))
    signature = ", ".join(["self", "name", *required, "*", *optional, "layers=1"])
    lines = [f"    def {rule.helper}({signature}):",
             f'        """One {rule.name} (rules/layers.toml [layers.{rule.name}]): its operators."""',
             "        sc = self.arch.schedule_config"]
    lines += [f"        {name} = {text(value)}" for name, value in rule.lets]
    for op in rule.ops:
        name = f'name + "{op.suffix}"' if op.suffix else "name"
        batch = "" if op.batch == E.Const(1) else f", {text(op.batch)}"
        lines.append(f"        self.matmul({name}, {text(op.m)}, {text(op.k)}, {text(op.n)}, layers{batch})")
    for t in rule.transfers:
        call = f'self.{t["kind"]}(f"{{name}}_{t.get("name", t["kind"])}", {text(t["rows"])}, {text(t["cols"])}, layers)'
        when = t.get("when", E.TRUE)
        lines += [f"        {call}"] if when == E.TRUE else [f"        if {text(when)}:", f"            {call}"]
    return "\n" + "\n".join(lines)


def _local_table(every: list[Rules]) -> str:
    """``LOCAL``: per FFN kind, whether it runs on the rank's own rows
    (rules/execution.toml [forward.local]), over the schedule."""
    table = _one_for_all(every, lambda rules: tuple(sorted(rules.execution.local.items())), "execution.forward.local")
    items = [f"    {show(E.Const(kind))}: lambda sc: {show(e)}," for kind, e in table or ()]
    return "\n".join(["# per FFN kind, whether it runs on the rank's own rows (rules/execution.toml [forward.local])",
                      "LOCAL = {", *items, "}"])


def _by_family(every: list[Rules]) -> str:
    """Per source family (an arch's ``source``): its prefill chunk
    (``PREFILL_CHUNK``, the rules' [prefill]) and the defaults it derives
    for server arguments not given (``DERIVED``, [switches]), each over the
    other arguments as Arch.switch reads them."""
    lines, chunks, derived = [], [], []
    for rules in every:
        tag = rules.flavour.replace("-", "_")
        lines += ["", "", f"def _prefill_chunk_{tag}(arch, sc):",
                  f"    return {show(_switches_read(rules.execution.prefill_chunk, 'arch', 'sc'))}"]
        chunks.append(f"    {show(E.Const(rules.flavour))}: _prefill_chunk_{tag},")
        items = []
        for name in sorted(rules.derived):
            lines += ["", "", f"def _derived_{tag}_{name}(arch, sc):",
                      f"    return {show(_switches_read(rules.derived[name], 'arch', 'sc'))}"]
            items.append(f"        {show(E.Const(name))}: _derived_{tag}_{name},")
        derived += [f"    {show(E.Const(rules.flavour))}: {{", *items, "    },"]
    return "\n".join([*lines, "", "",
                      "# tokens per prefill chunk (0: the whole prompt), by source family", "PREFILL_CHUNK = {",
                      *chunks, "}",
                      "# the default of a server argument the source derives when not given, by source family",
                      "# (rules/parallel.toml [switches])",
                      "DERIVED = {", *derived, "}"])


def _constants(root: str, rules: Rules) -> str:
    ex = rules.execution
    methods = sorted(set(ex.one_byte) | set(ex.sub_byte))
    fused = ", ".join(f"{show(E.Const(k))}: {show(E.Const(v[0]))}" for k, v in sorted(ex.fused.items()))
    items = [f"{show(E.Const(k))}: ({v[0]!r}, {v[1]!r})" for k, v in sorted(ex.bandwidth.items())]
    one_line = f"BANDWIDTH_GB_S = {{{', '.join(items)}}}"
    bandwidth = [one_line] if len(one_line) <= LINE_LENGTH else ["BANDWIDTH_GB_S = {", *(f"    {i}," for i in items), "}"]
    return "\n".join([
        "import re",
        "from functools import partialmethod",
        "from types import SimpleNamespace",
        "",
        f"from {root}.config import ForwardMode",
        f"from {root}.models_arch.base_model_arch import BaseModelArch",
        f"from {root}.op.op_register import create_operator",
        f"from {root}.op.operator_base import DataType, OperatorIO, OperatorMetadata, Tensor",
        "",
        "# quantization_config quant_method values whose weights LLMSim counts at 1 byte",
        'ONE_BYTE_METHODS = frozenset("""',
        *textwrap.wrap(" ".join(methods), 76, break_on_hyphens=False),
        '""".split())',
        "# a fused layer is left out of the quantization when its first shard is",
        f"FUSED = {{{fused}}}",
        "# transfer bandwidths, GB/s, (EXTEND, DECODE), as LLMSim's own modules set them for an",
        "# all-reduce; a reduce-scatter, an all-gather or an all-to-all sends half of what an",
        "# all-reduce of the same tensor sends, so it is charged at twice the bandwidth",
        *bandwidth,
    ])


_HELPERS = '''
def model_dtype(mc):
    dtype = str(getattr(mc, "torch_dtype", None) or getattr(mc, "dtype", None) or "")
    return DataType.FP32 if dtype.endswith("float32") else DataType.BF16


def weight_dtype_of(mc, path):
    """The weights of sglang module `path`: 1 byte in a checkpoint quantized to
    8 bits or fewer, unless its quantization_config leaves the module out."""
    qc = getattr(mc, "quantization_config", None)
    if qc is None:  # a multimodal checkpoint's is in text_config: sglang copies it up
        text = getattr(mc, "text_config", None) or {}
        text = text if isinstance(text, dict) else vars(text)
        qc = text.get("quantization_config")
    qc = qc if isinstance(qc, dict) else {}
    if str(qc.get("quant_method", "")).lower() not in ONE_BYTE_METHODS:
        return model_dtype(mc)
    left_out = [*(qc.get("modules_to_not_convert") or [])]
    left_out += [*(qc.get("ignored_layers") or []), *(qc.get("ignore") or [])]
    head, _, proj = path.rpartition(".")
    shard = f"{head}.{FUSED[proj]}" if proj in FUSED else path  # as sglang reads an ignore list
    if any(_names(n, path) or _names(n, shard) for n in left_out):
        return model_dtype(mc)
    return DataType.INT8


def _names(name, path):
    """`name` (with or without layer numbers, or a `re:` pattern) is `path`."""
    if name.startswith("re:"):
        return re.search(name[3:], path) is not None
    name = re.sub(r"\\.\\d+(?=\\.|$)", "", name)
    return path == name or path.endswith("." + name) or path.startswith(name + ".")


class _Sub:
    """A nested config read by attribute, as sglang reads transformers'
    sub-configs, or by key, as it reads a JSON object a config class keeps a
    dict (KimiLinearConfig.linear_attn_config["kda_layers"])."""

    def __init__(self, values):
        for key, value in values.items():
            if isinstance(key, str):
                self.__dict__[key] = _Sub(value) if isinstance(value, dict) else value

    def __getitem__(self, key):
        return self.__dict__[key]

    def __contains__(self, key):
        return key in self.__dict__

    def get(self, key, default=None):
        return self.__dict__.get(key, default)


def as_config(value):
    """A JSON object of the config read by attribute, as its config class reads it."""
    return _Sub(value) if isinstance(value, dict) else value


def as_ints(items):
    """[int(x) for x in items]: layer indices the config gives as text
    (moe_layers_enum = "1,2,3", read as str.split(mc.moe_layers_enum, ","))."""
    return [int(x) for x in items]


def coalesce(value, default):
    """`value`, or `default` where it is None (`default if value is None else value`)."""
    return default if value is None else value


def nonzero_indices(flags):
    """The indices of the config's per-layer flags that are not 0."""
    return [i for i, f in enumerate(flags) if f != 0]


def zero_indices(flags):
    """The indices of the config's per-layer flags that are 0."""
    return [i for i, f in enumerate(flags) if f == 0]


def sub_config(mc, name):
    """mc.<name> (text_config ...): LLMSim keeps a nested config a dict, or
    flattens its keys into mc (Qwen3.5-MoE) and drops it."""
    value = getattr(mc, name, None)
    return mc if value is None else _Sub(value) if isinstance(value, dict) else value


class Operators:
    """Adds one forward pass's operators to an arch: matmuls (at the model
    dtype, or at the precision of the sglang module whose weights they
    multiply by: `weight`), attention cores (gathered per attention key, at
    the arch's KV-cache dtype) and collectives (at LLMSim's bandwidth for
    their kind and the mode; BF16, or the precision of `weight`: a fused MoE's
    FP8 dispatch)."""

    def __init__(self, arch, *attention_keys, repeat=1):
        self.arch, self.dense = arch, model_dtype(arch.model_config)
        self.attention_keys = {key: [] for key in attention_keys}
        self.repeat = repeat  # every operator runs this many times (prefill chunks)

    def matmul(self, name, m, k, n, num_layers, batch_size=1, weight=None):
        dt = self.dense if weight is None else weight_dtype_of(self.arch.model_config, weight)
        io = OperatorIO(Tensor(m, k), Tensor(m, n), Tensor(k, n), dt, DataType.BF16, dt)
        self.arch._add_operator(_new("matmul", name, io, batch_size, num_layers * self.repeat))

    def attention(self, name, m, k, n, num_layers, batch_size, key="attention"):
        dt = self.arch.kv_cache_dtype or self.dense
        io = OperatorIO(Tensor(m, k), Tensor(m, n), Tensor(k, n), dt, DataType.BF16, dt)
        kind = self.arch.model_config.attention_type
        op = _new("attention", name, io, batch_size, num_layers * self.repeat, kind)
        self.attention_keys[key].append(op)

    def transfer(self, kind, name, m, n, num_layers, batch_size=1, weight=None):
        """A collective of `batch_size` x (m, n) elements per rank."""
        dtype = DataType.BF16 if weight is None else weight_dtype_of(self.arch.model_config, weight)
        io = OperatorIO(Tensor(m, n), Tensor(m, n), Tensor(0, 0), dtype, dtype, dtype)
        op = _new("transfer", name, io, batch_size, num_layers * self.repeat)
        decode = self.arch.schedule_config.mode == ForwardMode.DECODE
        op._bandwidth_gb_s = BANDWIDTH_GB_S[kind][1 if decode else 0]
        self.arch._add_transfer_operator(op)

    # ops.all_reduce(name, m, n, num_layers), ...: one method per kind
@COLLECTIVES@
@RULE_HELPERS@

    def finish(self):
        for key, operators in self.attention_keys.items():
            self.arch._add_attention_operator(key, operators)


def _new(kind, name, io, batch_size, num_layers, *args):
    sizes = dict(batch_size=batch_size, num_layers=num_layers)
    return create_operator(kind, OperatorMetadata(name, kind, name, io, **sizes), *args)


class Arch(BaseModelArch):
    """An emitted arch: its KV cache at `kv_cache_dtype` (None: the model
    dtype), the whole model's being one GPU's at parallel sizes 1 unless the
    arch says otherwise."""

    kv_cache_dtype = None
    attention_type_name = "MHA"  # what its attention is ("MLA" stated by the arch)

    def get_kv_cache(self) -> float:
        """KV-cache bytes per token, whole model (one GPU at parallel sizes 1)."""
        return self._kv_cache_bytes(SimpleNamespace(tp_size=1, dp_size=1, ep_size=1))

    def get_kv_cache_per_gpu(self) -> float:
        """KV-cache bytes per token on one GPU."""
        return self._kv_cache_bytes(self.schedule_config)

    def _kv_cache_bytes(self, sc) -> float:
        """KV-cache bytes per token on one GPU at the parallel sizes of `sc`:
        the arch's elements per token (`_kv_cache_elements`) at its KV dtype."""
        mc = self.model_config
        return float(self._kv_cache_elements(mc, sc) * (self.kv_cache_dtype or model_dtype(mc)).value)

    attention_keys = ("attention",)  # the groups its attention cores are gathered in

    def build_operators(self):
        """LLMSim's call: the operators of one forward pass (add_operators),
        on seq_len tokens, run once per prefill chunk (prefill_chunks)."""
        chunks, seq_len = self.prefill_chunks()
        ops = Operators(self, *self.attention_keys, repeat=chunks)
        self.add_operators(ops, self.model_config, self.schedule_config, seq_len)
        ops.finish()

    def add_operators(self, ops, mc, sc, seq_len):
        """The arch's operators into `ops`, for `seq_len` tokens of the model
        `mc` at the schedule `sc`."""
        raise NotImplementedError(f"{type(self).__name__} states its operators")

    def _kv_cache_elements(self, mc, sc):
        """KV-cache elements per token on one GPU at the parallel sizes of `sc`."""
        raise NotImplementedError(f"{type(self).__name__} states its KV cache")

    server_args = {}  # a module's server arguments (its SERVER_ARGS)
    source = "sglang"  # the family of model source it was emitted from (PREFILL_CHUNK, DERIVED)
    # the model's --boundary-reduction at "auto" where its role calls derive
    # rsv and maxlen from it (sglang 0.5.23 on; None: they are passed)
    boundary_reduction = None

    def switch(self, name, sc=None):
        """sglang's server argument `name`: the LLMSim schedule field of that
        name when there is one, else the module's value (SERVER_ARGS), else
        the default sglang derives from the others (DERIVED)."""
        sc = self.schedule_config if sc is None else sc
        if hasattr(sc, name):
            return getattr(sc, name)
        if name in self.server_args:
            return self.server_args[name]
        return DERIVED[self.source][name](self, sc)

    def prefill_chunk(self):
        """Tokens per prefill chunk (the source's [prefill] rules; 0: whole)."""
        return PREFILL_CHUNK[self.source](self, self.schedule_config)

    def prefill_chunks(self):
        """(chunks, seq_len): this forward pass's tokens as `chunks` pieces of
        `seq_len` tokens, an EXTEND in pieces of prefill_chunk() tokens, a
        DECODE in one; every operator runs once per piece."""
        chunk = self.prefill_chunk()
        tokens = self.get_seq_length()
        decode = self.schedule_config.mode == ForwardMode.DECODE
        chunks = 1 if decode or not chunk else -(-tokens // chunk)
        return chunks, -(-tokens // chunks)

@BOUNDARY@

@DERIVED@
'''
