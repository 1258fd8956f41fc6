"""The sandboxed expression language of ``transform`` and ``branch`` steps: CEL (Common
Expression Language) through ``cel-python``. Never ``eval``.

CEL has no statements, no I/O, no imports and no unbounded loops; an expression sees only the
names it is given (``input``, ``steps``, ``prev``). Every way it can go wrong — a syntax
error, an unknown name, a type mismatch, division by zero, a value JSON cannot hold — comes
back as ``ExpressionError`` with a message a builder can act on.
"""

from __future__ import annotations

import base64
import math
from functools import lru_cache
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.evaluation import CELEvalError, CELSyntaxError, CELUnsupportedError

MAX_EXPRESSION_CHARS = 4000
MAX_NESTING = 60  # brackets deep: the parser recurses, and deeper is never a real expression

# What the library may raise for a malformed or ill-typed expression, besides its own errors.
_LIBRARY_ERRORS = (
    celpy.CELParseError,
    CELEvalError,
    CELSyntaxError,
    CELUnsupportedError,
    lark.exceptions.LarkError,
    ArithmeticError,
    LookupError,
    TypeError,
    ValueError,
    RecursionError,
)


class ExpressionError(ValueError):
    """The expression cannot be compiled or evaluated, or its value is not JSON."""


def _nesting(expression: str) -> int:
    depth = deepest = 0
    for char in expression:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


def _first_line(error: BaseException) -> str:
    text = str(error.args[0] if isinstance(error, CELEvalError) and error.args else error).strip()
    line = (text.splitlines() or [type(error).__name__])[0]
    return line.split(" (in activation", 1)[0][:300]


@lru_cache(maxsize=512)
def _program(expression: str):
    """The parsed program of ``expression``, kept per process (an approved version's expressions
    never change; parsing is most of the cost of a small one). Each evaluation has activations
    of its own, so a program serves any number of them."""
    # The interpreter walks the parse tree. (The library's CompiledRunner would transpile the
    # expression to Python and exec() it: never used here.)
    environment = celpy.Environment(runner_class=celpy.InterpretedRunner)
    return environment.program(environment.compile(expression))


def evaluate(expression: str, names: dict[str, Any]) -> Any:
    """The JSON value of ``expression`` with ``names`` (JSON values) bound; raise ``ExpressionError``."""
    if not isinstance(expression, str) or not expression.strip():
        raise ExpressionError("The expression is empty.")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"The expression is longer than {MAX_EXPRESSION_CHARS:,} characters.")
    if _nesting(expression) > MAX_NESTING:
        raise ExpressionError(f"The expression nests deeper than {MAX_NESTING} brackets.")
    try:
        program = _program(expression)
    except _LIBRARY_ERRORS as error:
        raise ExpressionError(f"The expression does not parse: {_first_line(error)}") from None
    try:
        activation = {name: celpy.json_to_cel(value) for name, value in names.items()}
        value = program.evaluate(activation)
    except _LIBRARY_ERRORS as error:
        raise ExpressionError(f"The expression failed: {_first_line(error)}") from None
    if isinstance(value, CELEvalError):
        raise ExpressionError(f"The expression failed: {_first_line(value)}")
    return to_json(value)


def to_json(value: Any, depth: int = 0) -> Any:
    """A CEL value as plain JSON (timestamps and durations as strings, bytes as base64)."""
    if depth > MAX_NESTING:
        raise ExpressionError("The value nests too deep to store.")
    if value is None or isinstance(value, celtypes.NullType):
        return None
    if isinstance(value, celtypes.BoolType | bool):
        return bool(value)
    if isinstance(value, celtypes.TimestampType | celtypes.DurationType):
        return str(value)
    if isinstance(value, int):
        if abs(value) > 2**53:
            raise ExpressionError("The value is an integer too large to store exactly in JSON.")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExpressionError("The value is not a finite number, which JSON cannot hold.")
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(to_json(key, depth + 1)): to_json(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item, depth + 1) for item in value]
    raise ExpressionError(f"The value is a {type(value).__name__}, which JSON cannot hold.")
