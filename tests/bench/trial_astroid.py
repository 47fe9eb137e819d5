"""Trial: astroid in place of astgen's hand-written module loading and class
hierarchies (parse.py + trace.Loader + Tracer._mro), on a whole sglang tree.

For every EntryClass of every model file: astroid builds the module and
computes ``ClassDef.mro()``; astgen parses with libcst and walks its own MRO.
Prints the time of each beside the other (ratio) and how many MROs differ.
Run: python tests/bench/trial_astroid.py [--version 0.5.23]
"""

from __future__ import annotations

import argparse
import time

from astgen.frontend.registry import _resolving
from astgen.rules import load_rules
from astgen.frontend.source import fetch_version
from astgen.frontend.loader import Loader
from astgen.trace import Tracer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", default="0.5.23")
    args = ap.parse_args()
    tree = fetch_version(args.version)
    files = tree.model_files()

    t0 = time.perf_counter()
    loader, rules = Loader(tree), load_rules()
    ours: dict[str, list[str]] = {}
    for path in files:
        try:
            pm = loader.load(tree.module_name(path))
        except Exception:  # noqa: BLE001 - a file astgen cannot parse is reported by scan
            continue
        tracer = Tracer(loader, rules)
        for entry in pm.entry_classes:
            info = pm.classes.get(entry)
            if info is not None:
                ours[f"{pm.name}.{entry}"] = [c.name for c in tracer._mro(info)]
    t_ours = time.perf_counter() - t0

    import astroid
    from astroid import nodes

    t0 = time.perf_counter()
    theirs: dict[str, list[str]] = {}
    failed = 0
    with _resolving(str(tree.root)):
        for path in files:
            name = tree.module_name(path)
            try:
                module = astroid.MANAGER.ast_from_file(str(path), name, source=True)
            except Exception:  # noqa: BLE001
                failed += 1
                continue
            for key in [k for k in ours if k.rsplit(".", 1)[0] == name]:
                cls = module.locals.get(key.rsplit(".", 1)[1], [None])[0]
                if not isinstance(cls, nodes.ClassDef):
                    continue
                try:
                    mro = [c.name for c in cls.mro()]
                except Exception:  # noqa: BLE001 - astroid's own failures: no MRO
                    failed += 1
                    continue
                theirs[key] = [n for n in mro if n not in ("Module", "object")]
    t_astroid = time.perf_counter() - t0

    same = sum(1 for k in theirs if theirs[k] == ours[k])
    print(f"sglang {tree.version}: {len(files)} model files, {len(ours)} entry classes")
    print("figure                               seconds  baseline  ratio")
    print(f"astgen: libcst parse + own MRO        {t_ours:7.2f}  {t_ours:8.2f}  1.00")
    print(f"astroid: build + ClassDef.mro()       {t_astroid:7.2f}  {t_ours:8.2f}  {t_astroid / t_ours:5.2f}")
    print(f"MROs equal: {same} of {len(theirs)} astroid computed; astroid failed on {failed}")
    for k in sorted(theirs):
        if theirs[k] != ours[k]:
            extra = [n for n in theirs[k] if n not in ours[k]]
            print(f"  {k}: astroid also lists {extra} (classes outside the traced model files)")


if __name__ == "__main__":
    main()
