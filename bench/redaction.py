#!/usr/bin/env python
"""Redaction speed: what `kb.redaction.redact()` costs each search, paste and case.

    .venv/bin/python bench/redaction.py [--repeat N]

Times three ways over the same inputs: the regular expressions alone (what redaction was
before detect-secrets' plugins), every plugin on every line, and `redact()` as shipped (a
plugin runs only where one of its hints is in the text). Inputs: the pasted errors of
../shared/eval/errors-dev.jsonl when present (typical pastes), and 20 KB of generated
terminal output (botocore debug log with request ids, ARNs and one secret) and of
`aws s3api list-objects-v2` JSON (a quoted key and digest on every object). Prints the
median milliseconds per paste; the target is well under 5 ms for a typical paste.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb import redaction  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval" / "errors-dev.jsonl"


def patterns_only(text: str) -> str:
    for pattern, replacement in redaction.PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def plugins_without_hints(text: str) -> str:
    """redact() with every rule run on every line, as if no hint were ever missing."""
    unhinted = tuple(rule._replace(hints=("",), per_line=True) for rule in redaction.rules())
    with mock.patch.object(redaction, "rules", lambda: unhinted):
        return redaction.redact(text)


def terminal_output(size: int, rng: random.Random) -> str:
    """Debug output as people paste it: timestamps, request ids, ARNs, URLs, and one token."""
    lines = []
    while sum(map(len, lines)) < size:
        request_id = "%08x-%04x-%04x-%04x-%012x" % tuple(rng.getrandbits(b) for b in (32, 16, 16, 16, 48))
        lines.append(rng.choice([
            f"2024-03-05 12:00:{rng.randrange(60):02d},123 - MainThread - botocore.endpoint - DEBUG - Making request"
            f" for OperationModel(name=AssumeRole) with params: {{'url_path': '/', 'query_string': '', "
            f"'headers': {{'User-Agent': 'aws-cli/2.15.0'}}, 'url': 'https://sts.amazonaws.com/'}}\n",
            f"2024-03-05 12:00:{rng.randrange(60):02d},456 - MainThread - botocore.parsers - DEBUG - Response headers:"
            f" {{'x-amzn-RequestId': '{request_id}', 'Content-Type': 'text/xml', 'Content-Length': '306'}}\n",
            f"An error occurred (AccessDenied) when calling the AssumeRole operation: User: arn:aws:iam::"
            f"{rng.randrange(10**11, 10**12)}:user/alice is not authorized to perform: sts:AssumeRole on resource: "
            f"arn:aws:iam::123456789012:role/Deploy (RequestId: {request_id})\n",
        ]))
    lines.insert(len(lines) // 2, "export GITHUB_TOKEN=ghp_" + "".join(rng.choices("abcdef0123456789", k=36)) + "\n")
    return "".join(lines)


def json_output(size: int, rng: random.Random) -> str:
    """`aws s3api list-objects-v2` output: a "Key" and a quoted digest on every object."""
    objects = []
    while sum(map(len, objects)) < size:
        digest = "%032x" % rng.getrandbits(128)
        objects.append(
            f'        {{\n            "Key": "logs/2024/03/{rng.randrange(1, 29):02d}/app-{rng.randrange(10**6)}.log",\n'
            f'            "LastModified": "2024-03-05T12:00:00+00:00",\n            "ETag": "\\"{digest}\\"",\n'
            f'            "Size": {rng.randrange(10**7)},\n            "StorageClass": "STANDARD"\n        }}'
        )
    return '{\n    "Contents": [\n' + ",\n".join(objects) + "\n    ]\n}\n"


def median_ms(function: Callable[[str], str], texts: list[str], repeat: int) -> float:
    """Median over `repeat` runs of the mean milliseconds per text."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for text in texts:
            function(text)
        runs.append((time.perf_counter() - start) * 1000 / len(texts))
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    rng = random.Random(7)
    inputs = {"20 KB terminal output": [terminal_output(20_000, rng)], "20 KB JSON output": [json_output(20_000, rng)]}
    if EVAL.exists():
        inputs["typical paste (errors-dev)"] = [json.loads(line)["query"] for line in EVAL.open()]
    else:
        print(f"{EVAL} not found: typical pastes skipped")
    redaction.redact("warm up")  # builds the plugins once, as the first request of a worker does
    ways = {"regexes only (before)": patterns_only, "plugins without hints": plugins_without_hints,
            "redact() as shipped": redaction.redact}
    print(f"{'input':28} {'way':24} {'ms per paste':>12}")
    for name, texts in inputs.items():
        size = statistics.mean(map(len, texts))
        for way, function in ways.items():
            print(f"{name + f' ({size:.0f} ch)':28} {way:24} {median_ms(function, texts, args.repeat):12.3f}")


if __name__ == "__main__":
    main()
