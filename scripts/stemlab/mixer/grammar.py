"""The text form of a tool chain: calls separated by spaces, keyword arguments, decimal numbers.

    chain := call (" " call)*  |  ""          (the empty chain: leave the stem as it is)
    call  := TOOL "(" arg (", " arg)* ")"
    arg   := NAME "=" NUMBER                   NUMBER := "-"? digits ("." digits)?

`format_chain` writes every argument of a call in the tool's order with the argument's decimals;
`parse_chain` reads any spacing, arguments in any order, values off the grid (they are quantised) and
refuses, in one line naming the column, an unknown tool, an unknown, repeated or missing argument, a bad
number and a value out of range. parse_chain(format_chain(x)) == x for every chain of quantised calls.
The constrained decoder (stemlab.mixer.decoding) admits exactly the formatted language.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from stemlab.errors import StemlabError
from stemlab.mixer.tools import TOOL_BY_NAME, TOOL_NAMES, Call


class ChainSyntaxError(StemlabError):
    """A tool chain that does not parse: the message is one line naming the column and the problem."""


def format_call(call: Call) -> str:
    spec = TOOL_BY_NAME[call.tool]
    return f"{call.tool}(" + ", ".join(f"{a.name}={a.text(v)}" for a, v in zip(spec.args, call.values)) + ")"


def format_chain(calls: Sequence[Call]) -> str:
    return " ".join(format_call(c) for c in calls)


_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<number>-?\d+(?:\.\d+)?)|(?P<punct>[(),=])|(?P<bad>\S))")


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing whitespace is left
            break
        kind = m.lastgroup or "bad"
        out.append((kind, m.group(kind), m.start(kind) + 1))
        pos = m.end()
    return out


def parse_chain(text: str) -> list[Call]:
    """The calls of `text` in their written order; ChainSyntaxError (one line) when it is not a chain."""
    tokens = _tokens(text)
    calls: list[Call] = []
    i = 0

    def fail(message: str, at: int | None = None) -> ChainSyntaxError:
        col = tokens[at][2] if at is not None and at < len(tokens) else len(text.rstrip()) + 1
        return ChainSyntaxError(f"tool chain, column {col}: {message}")

    def expect(kind: str, value: str | None, what: str) -> str:
        nonlocal i
        if i >= len(tokens):
            raise fail(f"expected {what}, found the end")
        k, v, _ = tokens[i]
        if k != kind or (value is not None and v != value):
            raise fail(f"expected {what}, found {v!r}", i)
        i += 1
        return v

    while i < len(tokens):
        name_at = i
        name = expect("name", None, "a tool name")
        spec = TOOL_BY_NAME.get(name)
        if spec is None:
            raise fail(f"unknown tool {name!r}; tools: {', '.join(TOOL_NAMES)}", name_at)
        expect("punct", "(", f"'(' after {name}")
        values: dict[str, float] = {}
        while True:
            arg_at = i
            arg_name = expect("name", None, f"an argument of {name}")
            try:
                arg = spec.arg(arg_name)
            except KeyError:
                raise fail(f"{name} has no argument {arg_name!r}; it takes {', '.join(a.name for a in spec.args)}", arg_at) from None
            if arg_name in values:
                raise fail(f"{name}: argument {arg_name} given twice", arg_at)
            expect("punct", "=", f"'=' after {arg_name}")
            num_at = i
            if i < len(tokens) and tokens[i][0] != "number":
                raise fail(f"{name}: {arg_name} needs a number, found {tokens[i][1]!r}", i)
            value = float(expect("number", None, f"a number for {arg_name}"))
            tolerance = 1e-9 * max(1.0, abs(arg.high), abs(arg.low))
            if not math.isfinite(value) or value < arg.low - tolerance or value > arg.high + tolerance:
                raise fail(f"{name}: {arg_name}={tokens[num_at][1]} out of range {arg.text(arg.low)}..{arg.text(arg.high)}", num_at)
            values[arg_name] = arg.quantise(value)
            if i < len(tokens) and tokens[i][1] == ",":
                i += 1
                continue
            expect("punct", ")", f"',' or ')' in {name}(...)")
            break
        missing = [a.name for a in spec.args if a.name not in values]
        if missing:
            raise fail(f"{name}: missing argument {missing[0]}", name_at)
        calls.append(Call(name, tuple(values[a.name] for a in spec.args)))
    return calls


def try_parse(text: str) -> list[Call] | None:
    try:
        return parse_chain(text)
    except ChainSyntaxError:
        return None

