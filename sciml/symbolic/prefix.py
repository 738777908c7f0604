"""ODE systems as sympy expressions <-> token sequences in prefix (Polish) notation.

A system ``du_i/dt = f_i(u)``, ``i < d``, is written ``prefix(f_0) | prefix(f_1) | ...``. Sympy's
n-ary sums and products are folded into binary ``add`` / ``mul`` (right-nested), ``-x`` is
``neg x``, ``x^2`` / ``x^3`` / ``1/x`` are ``pow2`` / ``pow3`` / ``inv``, other integer powers are
``pow x INT...`` (the exponent must be a number; ``Abs(x)``, sympy's form of ``(x^2)^0.5`` for a
real ``x``, is ``pow pow2 x 0.5``). Real constants use the sign / mantissa / exponent encoding of
:mod:`sciml.symbolic.vocabulary`, integers ``INT+ digits``; a constant sub-expression that is not
an integer (``pi/2``, ``sqrt(2)``) is one real constant, so that decode-then-encode gives back the
same tokens.

Example: ``[sigma (u_1 - u_0), ...]`` with ``sigma = 10.0`` is
``add mul + N100 E-1 u_1 mul - N100 E-1 u_0 | ...`` (an integer ``sigma = 10`` is ``INT+ 1 0``).

:func:`decode` never raises: a malformed sequence gives a :class:`Decoded` with ``valid=False``
and the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp

from .._scalars import is_int
from .vocabulary import (
    BINARY,
    MANTISSA_DIGITS,
    PLACEHOLDER,
    SEPARATOR,
    UNARY,
    _read_float,
    decode_float,
    encode_float,
    encode_int,
)

__all__ = ["state_symbols", "encode", "skeleton", "decode", "Decoded"]

_FUNCS = {"sin": sp.sin, "cos": sp.cos, "exp": sp.exp}


def state_symbols(dim: int) -> tuple[sp.Symbol, ...]:
    """The state variables ``(u_0, ..., u_{dim-1})`` (real symbols)."""
    return tuple(sp.Symbol(f"u_{i}", real=True) for i in range(dim))


def _constant(expr: sp.Expr, max_exponent: int) -> sp.Expr:
    """A constant sub-expression as the value its tokens hold: an integer as is, anything else
    (a float, 1/3, pi/2, sqrt(2), exp(2)) as one float rounded to the encoding's 3 digits."""
    if expr.is_Integer:
        return expr
    try:
        value = complex(expr.evalf())
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        value = complex("nan")
    if value.imag != 0 or not math.isfinite(value.real):
        raise ValueError(
            f"cannot encode the constant {expr}: its value {value} is not a finite real number"
        )
    rounded = decode_float(encode_float(value.real, max_exponent))
    assert rounded is not None
    return sp.Float(rounded)


def _canonical(expr: sp.Expr, max_exponent: int) -> sp.Expr:
    """``expr`` with each constant sub-expression folded into one number and rounded as its
    tokens will hold it, then re-evaluated by sympy.

    (why) decode builds sympy expressions, and sympy folds every numeric sub-tree into one number
    (``mul + N500 E-3 mul + N314 E-2 u_0``, the tokens of ``pi/2 u_0``, decodes as ``1.57 u_0``)
    and orders the terms of a sum by their coefficients (``0.3332 u_0 + 0.3331 u_1`` and the
    rounded ``0.333 u_0 + 0.333 u_1`` come in opposite orders). Encoding the expression that
    decode will rebuild makes ``encode(decode(encode(f))) == encode(f)``.
    """
    if expr.is_Symbol or expr.is_Integer:
        return expr
    if expr.is_number:
        return _constant(expr, max_exponent)
    if expr.is_Add or expr.is_Mul:
        numbers = [a for a in expr.args if a.is_number]
        rest = [_canonical(a, max_exponent) for a in expr.args if not a.is_number]
        # the numeric terms / factors fold into one before rounding (1 + pi -> 4.14, not 1 + 3.14)
        folded = [_constant(expr.func(*numbers), max_exponent)] if numbers else []
        return expr.func(*folded, *rest)
    if isinstance(expr, sp.Abs):
        # (why) decode rebuilds Abs(x)'s tokens 'pow pow2 x 0.5' as (x^2)^0.5, which sympy
        # writes Abs(x)**1.0 and orders among a sum's terms by that form (Abs(u_0) - Abs(u_2)
        # and Abs(u_0)**1.0 - Abs(u_2)**1.0 come in opposite orders): build the same
        return sp.Pow(_canonical(expr.args[0], max_exponent) ** 2, sp.Float(0.5))
    if not expr.args:
        return expr
    return expr.func(*(_canonical(a, max_exponent) for a in expr.args))


def _encode(expr: sp.Expr, out: list[str], max_exponent: int) -> None:
    if expr.is_Symbol:
        index = expr.name[2:]
        if not (expr.name.startswith("u_") and _is_digits(index) and index == str(int(index))):
            # (why) any name was written as a token ('x', 'u_01', a skeleton's 'C_0'), which the
            # vocabulary lacks and decode refuses: encode must not write what it cannot read
            raise ValueError(
                f"cannot encode the symbol {expr.name!r}: the vocabulary's variables are u_0, "
                f"u_1, ... (state_symbols(dim)); substitute values for other symbols first"
            )
        out.append(expr.name)
    elif expr.is_Integer:
        try:
            float(int(expr))
        except OverflowError:
            # (why) decode refuses a constant outside float64: the tokens would not read back
            raise ValueError(
                f"cannot encode the integer {sp.sstr(expr)[:40]}... ({len(str(abs(int(expr))))} "
                f"digits): it is beyond float64 (|value| <= 1.8e308)"
            ) from None
        out.extend(encode_int(int(expr)))
    elif expr.is_Float:
        out.extend(encode_float(float(expr), max_exponent))
    elif expr.is_Rational or expr.is_NumberSymbol:
        # 1/3 or pi: written as its 3-digit float, the encoding's precision
        out.extend(encode_float(float(expr), max_exponent))
    elif expr.is_Add or expr.is_Mul:
        args = list(expr.args)
        if expr.is_Mul and args[0] == -1:
            out.append("neg")
            _encode(
                sp.Mul(*args[1:], evaluate=False) if len(args) > 2 else args[1], out, max_exponent
            )
            return
        op = "add" if expr.is_Add else "mul"
        for a in args[:-1]:
            out.append(op)
            _encode(a, out, max_exponent)
        _encode(args[-1], out, max_exponent)
    elif expr.is_Pow:
        base, exp = expr.args
        named = {2: "pow2", 3: "pow3", -1: "inv"}
        if isinstance(base, sp.Abs) and exp.is_Float and float(exp).is_integer() and exp != 0:
            # decode reads Abs's tokens (u^2)^0.5 as Abs(u)**1.0, and 'inv' / 'pow3' of them as
            # Abs(u)**-1.0 / Abs(u)**3.0: write the integer power of Abs, as encode wrote it
            k = int(exp)
            _encode(base if k == 1 else sp.Pow(base, k, evaluate=False), out, max_exponent)
        elif exp.is_Integer and int(exp) in named:
            out.append(named[int(exp)])
            _encode(base, out, max_exponent)
        elif exp.is_Integer and int(exp) < 0:
            out.append("inv")
            _encode(sp.Pow(base, -exp, evaluate=False), out, max_exponent)
        else:
            if not exp.is_number:
                # decode reads 'pow' only with a numeric exponent: refuse what it cannot read
                raise ValueError(
                    f"cannot encode {expr}: the vocabulary's 'pow' needs a numeric exponent, "
                    f"got {exp} (write a**x as exp(x*log(a)) with a numeric log(a))"
                )
            out.append("pow")
            _encode(base, out, max_exponent)
            _encode(exp, out, max_exponent)
    elif isinstance(expr, (sp.sin, sp.cos, sp.exp)):
        out.append(type(expr).__name__)
        _encode(expr.args[0], out, max_exponent)
    elif isinstance(expr, sp.Abs):
        # decode writes (x^2)^0.5 of a real x as Abs(x): write it back the same way
        out.extend(["pow", "pow2"])
        _encode(expr.args[0], out, max_exponent)
        out.extend(encode_float(0.5, max_exponent))
    else:
        raise ValueError(
            f"cannot encode {expr!r} ({type(expr).__name__}); supported: symbols u_i, numbers, "
            f"+, *, numeric powers, {', '.join(_FUNCS)}"
        )


def encode(system: Sequence[sp.Expr] | Decoded, *, max_exponent: int = 10) -> list[str]:
    """The prefix tokens of the right-hand sides ``system = (f_0, ..., f_{d-1})``, joined by ``|``.

    Each constant sub-expression that is not an integer (``0.1234``, ``1/3``, ``pi/2``,
    ``sqrt(2)``, ``exp(2)``, the ``1 + pi`` of ``u_0 + 1 + pi``) is folded into one real constant
    rounded to 3 significant digits, and the expression is written as sympy re-evaluates it with
    the rounded constants. This is what :func:`decode` rebuilds, so for any ``tokens`` returned by
    ``encode``, ``encode(decode(tokens).expressions) == tokens``; a valid :class:`Decoded` is
    taken as its expressions, so ``encode(decode(tokens)) == tokens`` too.

    Raises:
        TypeError: ``system`` is a string or a single expression, not a sequence of them.
        ValueError: an expression uses an operation outside the vocabulary, or a constant is
            outside the exponents ``E-max_exponent ... E+max_exponent`` (nonzero magnitudes
            ``1e-8 ... 9.99e12`` at the default 10) or not real; the message names the equation
            and the constant; an integer beyond float64, which decode would refuse; a symbol
            other than the state variables ``u_i`` (``x``, ``u_01``, a skeleton's ``C_0``); an
            invalid :class:`Decoded` (with its error); ``max_exponent`` not an int >= 0. For a
            :class:`Decoded` whose constant :func:`decode` folded outside the exponents, the
            message says so and names the ``max_exponent`` that writes it.
    """
    decoded = isinstance(system, Decoded)
    if decoded:
        # (why) TorchVectorField takes a Decoded; encode raised "object of type 'Decoded' has
        # no len()"
        if not system.valid:
            raise ValueError(f"cannot encode an invalid system: {system.error}")
        system = system.expressions
    if not is_int(max_exponent) or max_exponent < 0:
        # (why) checked by encode_float only, so a system without a float constant took any
        # max_exponent (-1, 1.5, True), and one with such a constant blamed its equation
        raise ValueError(f"expected max_exponent to be an int >= 0, got {max_exponent!r}")
    if isinstance(system, (str, bytes, sp.Expr)):
        # (why) a str is a sequence too: encode("u_0") wrote one equation per character
        raise TypeError(
            f"expected the right-hand sides as a sequence (f_0, ..., f_{{d-1}}), got "
            f"{type(system).__name__} {system!r}; write one equation as [f]"
        )
    if len(system) == 0:
        raise ValueError("expected at least one equation, got an empty system")
    out: list[str] = []
    for i, f in enumerate(system):
        if i:
            out.append(SEPARATOR)
        try:
            expr = sp.sympify(f)
            # rounding can make sympy fold or reorder again: repeat until the expression is stable
            for _ in range(10):
                again = _canonical(expr, max_exponent)
                if again == expr:
                    break
                expr = again
            _encode(expr, out, max_exponent)
        except ValueError as err:
            out_of_range = any(m in str(err) for m in _OUT_OF_RANGE)
            hint = _folded_hint(f, max_exponent) if decoded and out_of_range else ""
            raise ValueError(f"equation {i} ({f}): {err}{hint}") from None
    return out


_OUT_OF_RANGE = ("below the smallest nonzero magnitude", "exceeds the largest exponent")


def _folded_hint(f: sp.Expr, max_exponent: int) -> str:
    """Why a decoded equation holds a constant encode cannot write, and what writes it.

    (why) decode folds a constant sub-expression into one number: sin(1 / (-76000)^3), tokens
    'sin inv pow3 - N760 E2' each in range, is -2.28e-15; encode's plain "below the smallest
    nonzero magnitude" read as if encode had been given that number.
    """
    need = max_exponent
    # evalf folds what sympy keeps exact (sin(1) 1e-8 u_0 -> 8.41e-9 u_0), as _canonical does
    for c in sp.sympify(f).evalf().atoms(sp.Number):
        v = abs(float(c))
        if not c.is_Integer and 0 < v < math.inf:
            need = max(need, abs(int(f"{v:.{MANTISSA_DIGITS - 1}e}".split("e")[1]) - 2))
    try:
        encode([f], max_exponent=need)
        writes = f" (max_exponent={need} writes it)"
    except ValueError:
        writes = ""
    return (
        f"; a constant sub-expression of the tokens is one number once folded (by decode, or "
        f"by encode's rounding), which can lie outside the exponents E-{max_exponent}.."
        f"E{max_exponent} although every number token is inside: this system has no tokens at "
        f"max_exponent={max_exponent}{writes}"
    )


def skeleton(tokens: Sequence[str]) -> list[str]:
    """``tokens`` with each real constant (sign, mantissa, exponent) replaced by ``<C>``.

    Integers (``INT+ 2``: structural constants such as the 2 in ``cos(2 u_0)``) are kept.
    """
    if isinstance(tokens, (str, bytes)):
        # (why) a str is a sequence of characters: skeleton('+ N100 E0') returned its characters
        raise TypeError(
            f"expected a sequence of tokens, got the {type(tokens).__name__} {tokens!r:.60}; "
            f"split it first (tokens.split())"
        )
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] in ("+", "-") and decode_float(tokens[i : i + 3]) is not None:
            out.append(PLACEHOLDER)
            i += 3
        else:
            out.append(tokens[i])
            i += 1
    return out


@dataclass(frozen=True)
class Decoded:
    """The result of :func:`decode`.

    Attributes:
        valid: True when the tokens form a well-formed system (and, if asked, of the right size).
        expressions: the right-hand sides ``(f_0, ..., f_{d-1})`` as sympy expressions; empty
            when invalid.
        error: why the sequence is invalid (None when valid).
    """

    valid: bool
    expressions: tuple[sp.Expr, ...] = ()
    error: str | None = None

    @property
    def dim(self) -> int:
        """The number of equations ``d`` (``len(expressions)``; 0 when invalid)."""
        return len(self.expressions)

    def __bool__(self) -> bool:
        return self.valid


class _Invalid(Exception):
    pass


_LOG10_MAX = 308  # float64 holds magnitudes 1e-308 ... 1.8e308


def _is_digits(s: str) -> bool:
    # str.isdigit accepts '²' and other non-ASCII digits, which int() then refuses
    return s.isascii() and s.isdigit()


def _check_constant(value: sp.Expr, at: int) -> None:
    """Refuse a constant sub-expression that is not a finite real float64 (it would evaluate to
    inf / nan / a complex number, and sympy's exact arithmetic on it can take unbounded time)."""
    try:
        v = complex(value.evalf())
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        v = complex("nan")
    if not (math.isfinite(v.real) and v.imag == 0):
        what = "complex" if math.isfinite(v.real) and math.isfinite(v.imag) else "non-finite"
        raise _Invalid(
            f"the constant starting at token {at} is {what} in float64: {sp.sstr(value)[:60]}"
        )


class _Parser:
    def __init__(self, tokens: Sequence[str], allow_placeholders: bool) -> None:
        self.tokens = list(tokens)
        self.pos = 0
        self.allow_placeholders = allow_placeholders
        self.placeholders: list[sp.Symbol] = []

    def next(self, wanted: str) -> str:
        if self.pos >= len(self.tokens):
            raise _Invalid(
                f"expected {wanted}, got the end of the sequence after {self.pos} tokens"
            )
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def _peek(self) -> str:
        return repr(self.tokens[self.pos]) if self.pos < len(self.tokens) else "the end"

    def expr(self, role: str, depth: int = 0) -> sp.Expr:
        """The expression starting at the current token; ``role`` names it in errors."""
        at = self.pos
        out = self._expr(role, depth)
        if out.is_number:
            _check_constant(out, at)
        return out

    def _expr(self, role: str, depth: int) -> sp.Expr:
        if depth > 200:
            raise _Invalid("expression nests deeper than 200 operators")
        at = self.pos
        tok = self.next(role)
        if tok in BINARY:
            a = self.expr(f"operand 1 of {tok!r} at token {at}", depth + 1)
            b = self.expr(f"operand 2 of {tok!r} at token {at}", depth + 1)
            if tok == "add":
                return sp.Add(a, b)
            if tok == "mul":
                return sp.Mul(a, b)
            if self.allow_placeholders and b in self.placeholders:
                # (why) skeleton writes a float exponent (the 0.5 of u^0.5 or of |u|'s
                # (u^2)^0.5) as <C>: a skeleton of such an equation must read back
                return sp.Pow(a, b)
            if not (b.is_Integer or b.is_Float):
                raise _Invalid(f"expected a numeric exponent of 'pow' at token {at}, got {b}")
            # (why) sympy evaluates a number to an integer power exactly: 9^999999999 would
            # not finish; nor would (9 u_0)^999999999, which sympy distributes over the product
            # (9^n u_0^n); a numeric factor outside float64 is refused before it is computed
            num = a if a.is_number else a.as_coeff_Mul()[0]
            if num.is_number and num != 1:
                size = abs(complex(num))
                if num.is_zero:
                    if b.is_negative:
                        raise _Invalid(f"'pow' at token {at} divides by zero")
                elif size == 0 or abs(float(b) * math.log10(size)) > _LOG10_MAX:
                    raise _Invalid(
                        f"'pow' at token {at}: {num}^{b} is outside the float64 range "
                        f"(|value| within 1e-{_LOG10_MAX} ... 1e{_LOG10_MAX})"
                    )
            return sp.Pow(a, b)
        if tok in UNARY:
            a = self.expr(f"the operand of {tok!r} at token {at}", depth + 1)
            if tok == "neg":
                return -a
            if tok == "inv":
                if a.is_zero:
                    raise _Invalid(f"'inv' at token {at} divides by zero")
                return 1 / a
            if tok == "pow2":
                return a**2
            if tok == "pow3":
                return a**3
            return _FUNCS[tok](a)
        # (why) 'u_01' is in no vocabulary, yet int() read it as u_1's index: a second
        # symbol for the same state variable
        if tok.startswith("u_") and _is_digits(tok[2:]) and tok[2:] == str(int(tok[2:])):
            return sp.Symbol(tok, real=True)
        if tok in ("+", "-"):
            mantissa = self.next(f"the mantissa 'Nddd' of the number at token {at}")
            exponent = self.next(f"the exponent 'E<int>' of the number at token {at}")
            value = _read_float([tok, mantissa, exponent])
            if value is None:
                raise _Invalid(
                    f"expected a number [sign, 'Nddd', 'E<int>'] at token {at}, got "
                    f"{[tok, mantissa, exponent]}"
                )
            if isinstance(value, str):
                raise _Invalid(f"{value}, at token {at}")
            return sp.Float(value)
        if tok in ("INT+", "INT-"):
            digits = ""
            while self.pos < len(self.tokens) and _is_digits(self.tokens[self.pos]):
                digits += self.tokens[self.pos]
                self.pos += 1
            if not digits:
                raise _Invalid(f"expected digits after {tok!r} at token {at}, got {self._peek()}")
            if len(digits) > _LOG10_MAX + 1:
                raise _Invalid(
                    f"the integer at token {at} has {len(digits)} digits: beyond float64"
                )
            return sp.Integer(int(digits) * (-1 if tok == "INT-" else 1))
        if tok == PLACEHOLDER:
            if not self.allow_placeholders:
                raise _Invalid(
                    f"placeholder {PLACEHOLDER} at token {at} (a skeleton has no values)"
                )
            self.placeholders.append(sp.Symbol(f"C_{len(self.placeholders)}", real=True))
            return self.placeholders[-1]
        raise _Invalid(
            f"expected {role} (an operator, a variable u_i or a number) at token {at}, got "
            f"unexpected token {tok!r}"
        )

    def system(self) -> tuple[sp.Expr, ...]:
        if not self.tokens:
            raise _Invalid("expected at least one equation, got an empty sequence")
        out = [self.expr("equation 0")]
        while self.pos < len(self.tokens):
            at = self.pos
            tok = self.next(f"'{SEPARATOR}'")
            if tok != SEPARATOR:
                raise _Invalid(
                    f"expected '{SEPARATOR}' or the end after equation {len(out) - 1} at token "
                    f"{at}, got {tok!r}"
                )
            out.append(self.expr(f"equation {len(out)} after '{SEPARATOR}' at token {at}"))
        return tuple(out)


def decode(
    tokens: Sequence[str], *, dim: int | None = None, allow_placeholders: bool = False
) -> Decoded:
    """Parse prefix tokens into sympy right-hand sides; never raises.

    Args:
        tokens: e.g. ``encode(system)``; ``<bos>``/``<eos>`` must be stripped first
            (:meth:`~sciml.symbolic.Vocabulary.words` does).
        dim: when given, a system with another number of equations or using a variable
            ``u_i`` with ``i >= dim`` is invalid.
        allow_placeholders: read ``<C>`` as fresh symbols ``C_0, C_1, ...`` (skeletons), also
            as the exponent of ``pow``, where any other symbol is refused.

    Returns:
        :class:`Decoded`; ``valid=False`` with the reason for any malformed sequence (unknown
        token, missing operand, trailing tokens, bad number, division by zero, a constant that is
        not a finite real float64 -- such as ``9^999999999``, refused before sympy would compute
        it exactly --, a complex-valued equation).

    Each constant sub-expression becomes one number (sympy folds it), which can lie outside the
    exponents of :func:`encode` although every number token is inside: ``sin inv pow3 - N760
    E2`` is the valid ``-2.28e-15``, and ``encode`` at ``max_exponent=10`` refuses it, as it
    refuses any constant it would have to write as 0 or cannot hold (its message names the
    ``max_exponent`` that writes it). :class:`~sciml.symbolic.TorchVectorField` evaluates such
    a system as is.
    """
    try:
        if isinstance(tokens, (str, bytes)):
            # (why) a str is a sequence of characters: decode('u_0') read the token 'u'
            raise _Invalid(
                f"expected a sequence of tokens, got the {type(tokens).__name__} "
                f"{tokens!r:.60}; split it first (tokens.split())"
            )
        parser = _Parser(tokens, allow_placeholders)
        exprs = parser.system()
        for i, f in enumerate(exprs):
            if f.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
                raise _Invalid(f"equation {i} is not finite: {f}")
            if f.has(sp.I):  # e.g. (-u_0^2)^0.5 = I |u_0|: not the right-hand side of a real ODE
                raise _Invalid(f"equation {i} is complex-valued: {f}")
            for c in f.atoms(sp.Number):  # a coefficient folded from parts that each fit
                _check_constant(c, 0)
        if dim is not None:
            if len(exprs) != dim:
                raise _Invalid(f"expected {dim} equations, got {len(exprs)}")
            for f in exprs:
                for s in f.free_symbols:
                    if s.name.startswith("u_") and int(s.name[2:]) >= dim:
                        raise _Invalid(f"variable {s.name} does not exist in a {dim}-d system")
        return Decoded(True, exprs)
    except _Invalid as err:
        return Decoded(False, (), str(err))
    except Exception as err:  # sympy may raise on pathological input: still "invalid"
        return Decoded(False, (), f"{type(err).__name__}: {err}")
