"""``python -m astgen.sglang_runtime``: read ``{"requests": [...]}`` as one
JSON line on stdin, build each model, print one ``astgen.runtime/2`` JSON
line per request on stdout (an ``error`` key when it could not be built).

sglang is imported once; each request is built in a forked process of its
own, so that one model's parallel state (which sglang writes once per
process) and failures never reach the next."""

from __future__ import annotations

import json
import os
import signal
import sys

BUILD_SECONDS = 600


def main() -> int:
    doc = json.loads(sys.stdin.readline() or "{}")
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever sglang prints is not an answer
    from astgen.sglang_runtime import record

    stood_in = record.prepare()
    import sglang.srt.configs.model_config  # noqa: F401 - imported once, before the forks
    import sglang.srt.model_loader.loader  # noqa: F401

    for request in doc.get("requests", []):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            signal.alarm(BUILD_SECONDS)  # a build that hangs dies, and is reported as such
            os.close(read)
            with os.fdopen(write, "w") as pipe:
                pipe.write(json.dumps(record.answer(request, stood_in), sort_keys=True))
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            text = pipe.read()
        _, status = os.waitpid(pid, 0)
        if not text:
            text = json.dumps({"schema": record.SCHEMA, "arch": request["arch"],
                               "layout": request["layout"]["fields"],
                               "error": f"the build process died (wait status {status})"})
        out.write(text + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
