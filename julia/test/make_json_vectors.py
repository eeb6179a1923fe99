"""Write json_vectors.txt: JSON texts produced (or rejected) by Python's json module, for the Julia tests.

Run from the repository root: .venv/bin/python julia/test/make_json_vectors.py

Each vector is a block of lines:
    valid <label>            or    invalid <label>
    text <hex of the JSON text's UTF-8 bytes>
    <flattened value lines>  (valid vectors only; see flatten())
    end
Strings are given as hex of their UTF-8 bytes (lone surrogates as 'surrogatepass' bytes), so the file
does not depend on any JSON reader.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

OUT = Path(__file__).with_name("json_vectors.txt")


def hexs(s: str) -> str:
    return s.encode("utf-8", "surrogatepass").hex()


def flatten(v: object, path: str, out: list[str]) -> None:
    if isinstance(v, dict):
        out.append(f"{path} obj {len(v)}")
        for k in sorted(v):
            flatten(v[k], f"{path}/{hexs(k)}", out)
    elif isinstance(v, list):
        out.append(f"{path} arr {len(v)}")
        for i, x in enumerate(v):
            flatten(x, f"{path}/{i}", out)
    elif isinstance(v, bool):
        out.append(f"{path} bool {'true' if v else 'false'}")
    elif v is None:
        out.append(f"{path} null")
    elif isinstance(v, int):
        out.append(f"{path} int {v}")
    elif isinstance(v, float):
        out.append(f"{path} float {v!r}")
    elif isinstance(v, str):
        out.append(f"{path} str {hexs(v)}")
    else:
        raise TypeError(type(v))


VALUES: list[tuple[str, object]] = [
    ("empty object", {}),
    ("empty array", []),
    ("scalars", [True, False, None, 0, -0, 1, -1]),
    ("big ints", [2**53, -(2**63), 2**63 - 1, 2**64, 10**30]),
    ("floats", [0.0, -0.0, 1.5, -2.25, 1e-7, 1e20, 1.7976931348623157e308, 5e-324, 0.1, 1 / 3]),
    ("escapes", 'quote " backslash \\ slash / \b\f\n\r\t end'),
    ("control characters", "".join(chr(i) for i in range(32)) + "\x7f"),
    ("unicode BMP", "café ñ 日本語 \u2028\u2029 \ufeff"),
    ("astral (surrogate pairs)", "emoji \U0001f600 and \U00010348 and \U0010ffff"),
    ("lone high surrogate", "a\ud800b"),
    ("lone low surrogate", "a\udc00b"),
    ("nested", {"a": [1, {"b": [None, {"c": "d"}]}], "e": {"f": {"g": []}}}),
    ("keys with escapes", {'k"ey': 1, "new\nline": 2, "ünï": 3, "": 4}),
    (
        "a Prefect block document",
        {
            "name": "willowdata",
            "data": {"basepath": "/tmp/x y"},
            "block_type": {"slug": "local-file-system"},
            "block_schema": {"fields": {"secret_fields": []}},
            "is_anonymous": False,
        },
    ),
]

# Texts written by hand: RFC 8259 allows them and Python's json reads them.
VALID_TEXTS: list[tuple[str, str]] = [
    ("whitespace around", ' \t\n\r{ "a" : [ 1 , 2 ] } \n'),
    ("exponents", "[1E2, 1e+2, 1e-2, -0.5e0, 0e0, 2.5E-3]"),
    ("escaped solidus and unicode escapes", '"\\/\\u0041\\u00e9\\u65e5\\ud83d\\ude00"'),
    ("upper-case hex", '"\\u00C9\\uD83D\\uDE00"'),
    ("top-level scalar", "42"),
    ("top-level string", '"x"'),
    ("duplicate keys: last wins", '{"a": 1, "a": 2}'),
]

# Texts RFC 8259 rejects. Python's json accepts the NaN/Infinity ones; the rest it rejects too.
INVALID_TEXTS: list[tuple[str, str]] = [
    ("empty", ""),
    ("trailing comma in array", "[1,]"),
    ("trailing comma in object", '{"a":1,}'),
    ("leading zero", "012"),
    ("leading plus", "+1"),
    ("bare dot", ".5"),
    ("dot without digits", "1."),
    ("exponent without digits", "1e"),
    ("NaN", "NaN"),
    ("Infinity", "Infinity"),
    ("minus Infinity", "-Infinity"),
    ("single quotes", "'a'"),
    ("unquoted key", "{a:1}"),
    ("raw newline in string", '"a\nb"'),
    ("raw tab in string", '"a\tb"'),
    ("bad escape", '"\\x41"'),
    ("short unicode escape", '"\\u12"'),
    ("bad hex in unicode escape", '"\\u12G4"'),
    ("unterminated string", '"abc'),
    ("unterminated array", "[1, 2"),
    ("unterminated object", '{"a": 1'),
    ("two values", "1 2"),
    ("comment", "[1] // no"),
    ("True capitalised", "True"),
    ("null misspelt", "nul"),
    ("missing colon", '{"a" 1}'),
    ("missing comma", "[1 2]"),
    ("minus alone", "-"),
    ("hex number", "0x10"),
]

RFC_ONLY = {"NaN", "Infinity", "minus Infinity"}


def main() -> None:
    blocks: list[str] = []

    def valid(label: str, text: str) -> None:
        lines: list[str] = []
        flatten(json.loads(text), "", lines)
        blocks.append(
            "\n".join([f"valid {label}", f"text {text.encode('utf-8', 'surrogatepass').hex()}", *lines, "end"])
        )

    for label, value in VALUES:
        valid(label + " (ensure_ascii)", json.dumps(value))
        if "lone" not in label:  # a lone surrogate has no UTF-8 form: only its \u escape is valid JSON text
            valid(label + " (utf-8)", json.dumps(value, ensure_ascii=False))
        valid(label + " (indented)", json.dumps(value, indent=2, sort_keys=True))
    for label, text in VALID_TEXTS:
        valid(label, text)
    for label, text in INVALID_TEXTS:
        if label not in RFC_ONLY:
            try:
                json.loads(text)
            except ValueError:
                pass
            else:
                raise AssertionError(f"Python's json accepts {label!r}")
        blocks.append("\n".join([f"invalid {label}", f"text {text.encode().hex()}", "end"]))
    assert math.isfinite(json.loads("1e308"))
    OUT.write_text(
        "# Generated by make_json_vectors.py from Python's json module; do not edit.\n" + "\n".join(blocks) + "\n"
    )
    print(f"wrote {len(blocks)} vectors to {OUT}")


if __name__ == "__main__":
    main()
