"""The token vocabulary of PROSE's symbolic modality and its number encoding.

A real constant is written as three tokens (Liu, Zhang & Schaeffer 2023, after Lample & Charton
2020): a sign, a three-digit mantissa and a base-10 exponent, so ``-0.0382 -> ["-", "N382",
"E-4"]`` (``382 * 10^-4``). The mantissa keeps 3 significant digits: the encoding's precision is a
relative error of at most ``5e-3`` (half a unit in the last digit). An integer is ``INT+`` or
``INT-`` followed by its decimal digits (``-12 -> ["INT-", "1", "2"]``).

Token ids: ``<pad> = 0``, ``<bos> = 1``, ``<eos> = 2``; the rest follow in a fixed order, so the
ids of a vocabulary depend only on ``max_dim`` and ``max_exponent``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._scalars import is_int

__all__ = [
    "PAD",
    "BOS",
    "EOS",
    "PLACEHOLDER",
    "SEPARATOR",
    "UNARY",
    "BINARY",
    "Vocabulary",
    "encode_float",
    "decode_float",
    "encode_int",
]

#: the padding token
PAD = "<pad>"
#: the beginning-of-sequence token
BOS = "<bos>"
#: the end-of-sequence token
EOS = "<eos>"
#: stands for any real constant in a skeleton
PLACEHOLDER = "<C>"
#: separates the equations of a system: ``f_0 | f_1 | f_2``
SEPARATOR = "|"
#: operators of arity 1 and 2 in prefix (Polish) notation
UNARY = ("neg", "inv", "pow2", "pow3", "sin", "cos", "exp")
BINARY = ("add", "mul", "pow")
MANTISSA_DIGITS = 3


def encode_float(value: float, max_exponent: int = 10) -> list[str]:
    """``value -> [sign, "Nddd", "E<e>"]`` with ``value ~= sign * ddd * 10^e``.

    The exponent must lie within ``E-max_exponent ... E+max_exponent``: nonzero magnitudes from
    ``10^(2 - max_exponent)`` (``1e-8`` at the default 10) to ``999 * 10^max_exponent``. A value
    outside raises ``ValueError``, a small one too: written as zero it would silently delete its
    term from the equation; so does one that rounds beyond float64 (``1.7976e308`` is ``1.80e308``
    at 3 digits, reachable where ``max_exponent >= 306``). Zero has one encoding,
    ``["+", "N000", "E0"]``, ``-0.0`` included: :func:`decode_float` reads every zero as ``0.0``.

    For every other finite ``value`` it encodes, ``decode_float(encode_float(value))`` is
    ``float(f"{value:.2e}")``, the value rounded to 3 significant digits.
    """
    # (why) float() took True as 1.0 and '1.5' as 1.5; a float max_exponent gave 'E1.5' bounds
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"expected a real number, got {value!r}")
    if not is_int(max_exponent) or max_exponent < 0:
        raise ValueError(f"expected max_exponent to be an int >= 0, got {max_exponent!r}")
    try:
        value = float(value)
    except OverflowError:  # (why) an int beyond float64 raised OverflowError, not ValueError
        raise ValueError(
            f"cannot encode the constant {str(value)[:40]}...: it is beyond float64 "
            f"(|value| <= 1.8e308)"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"cannot encode a non-finite constant {value}")
    if value == 0:
        return ["+", "N" + "0" * MANTISSA_DIGITS, "E0"]
    sign = "-" if value < 0 else "+"
    mantissa, exponent = f"{abs(value):.{MANTISSA_DIGITS - 1}e}".split("e")
    digits = mantissa.replace(".", "")
    e = int(exponent) - (MANTISSA_DIGITS - 1)
    if e < -max_exponent:
        smallest = 10.0 ** (MANTISSA_DIGITS - 1 - max_exponent)
        raise ValueError(
            f"constant {value} is below the smallest nonzero magnitude {smallest:g} of exponents "
            f"E-{max_exponent}..E{max_exponent}: pass a larger max_exponent (and a Vocabulary "
            f"with it), or remove the term or write it as 0 if it is negligible"
        )
    if e > max_exponent:
        raise ValueError(
            f"constant {value} exceeds the largest exponent E{max_exponent} (magnitudes up to "
            f"{999 * 10.0**max_exponent:g}): pass a larger max_exponent (and a Vocabulary with it)"
        )
    if not math.isfinite(float(f"{digits}e{e}")):
        # (why) 1.7976931348623157e308 is 1.80e308 at 3 digits: tokens that decode to inf
        raise ValueError(
            f"constant {value} rounds to {digits[0]}.{digits[1:]}e{e + MANTISSA_DIGITS - 1} at "
            f"{MANTISSA_DIGITS} significant digits, beyond float64 (|value| <= 1.8e308)"
        )
    return [sign, "N" + digits, f"E{e}"]


def decode_float(tokens: Sequence[str]) -> float | None:
    """The value of three float tokens, or None when they are not ``[sign, Nddd, E<e>]`` as the
    vocabulary writes them (ASCII digits, the exponent without a ``+`` or leading zeros) or their
    value is not a float64 (beyond ``1.8e308``, or a nonzero mantissa below the smallest
    subnormal: a vocabulary with ``max_exponent >= 306`` holds such tokens).

    A zero mantissa is ``0.0`` whatever the sign and exponent (``- N000 E0`` too): zero has one
    encoding, and ``-0.0`` would differ from it where a sign of zero shows (``copysign``,
    ``1 / x``, ``atan2``) although ``encode_float`` writes both alike.
    """
    value = _read_float(tokens)
    return value if isinstance(value, float) else None


def _read_float(tokens: Sequence[str]) -> float | str | None:
    """:func:`decode_float`'s value; None for tokens that are not a number, a message for a
    number outside float64."""
    if len(tokens) != 3:
        return None
    sign, mant, expo = tokens
    if sign not in ("+", "-") or not mant.startswith("N") or not expo.startswith("E"):
        return None
    digits, e = mant[1:], expo[1:]
    if len(digits) != MANTISSA_DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    try:
        exponent = int(e)
    except ValueError:
        return None
    if e != str(exponent):
        # (why) int() also reads 'E+3', 'E03', 'E-0' and non-ASCII digits: tokens that are not
        # in the vocabulary and that encode never writes (it writes 'E3' back)
        return None
    if int(digits) == 0:
        return 0.0  # (why) not -0.0 for '- N000': encode_float writes -0.0 as '+ N000 E0'
    # the decimal string, not ddd * 10.0**e, so that decode(encode(round3(x))) == round3(x) exactly
    value = float(f"{digits}e{exponent}")
    if value == 0 or not math.isfinite(value):
        # (why) float() reads 'N999 E400' as inf and 'N100 E-400' as 0.0, which would delete
        # the term that encode_float refuses to write as zero
        return (
            f"the number {list(tokens)} ({sign}{digits}e{exponent}) is outside float64 (nonzero "
            f"magnitudes 5e-324 ... 1.8e308)"
        )
    return -value if sign == "-" else value


def encode_int(value: int) -> list[str]:
    """``-12 -> ["INT-", "1", "2"]``; ``value`` an int (NumPy's too)."""
    if not is_int(value):
        # (why) int() truncated 2.7 to ['INT+', '2'] and read True as 1 and '12' as 12
        raise TypeError(f"expected an integer, got {value!r}")
    value = int(value)
    return ["INT-" if value < 0 else "INT+", *str(abs(value))]


def round_sig(value: float) -> float:
    """``value`` rounded to the encoding's 3 significant digits (what a round trip keeps):
    ``float(f"{value:.2e}")``, and ``0.0`` for ``-0.0``. ``ValueError`` for nan, inf and a value
    that rounds beyond float64."""
    decoded = decode_float(encode_float(value, max_exponent=10**6))
    assert decoded is not None
    return decoded


@dataclass(frozen=True)
class Vocabulary:
    """The token <-> id map for systems of up to ``max_dim`` equations in ``u_0 ... u_{max_dim-1}``.

    Attributes:
        max_dim: the number of state variables the vocabulary names.
        max_exponent: float exponents run over ``E-max_exponent ... E+max_exponent``.
        tokens: every token, in id order (``tokens[i]`` has id ``i``); built from ``max_dim``
            and ``max_exponent``, not an argument.
    """

    max_dim: int = 5
    max_exponent: int = 10
    tokens: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # (why) Vocabulary(2.5) failed in range() ('float' object cannot be interpreted as an
        # integer) and Vocabulary(True) built a 1-d vocabulary
        if not (is_int(self.max_dim) and is_int(self.max_exponent)):
            raise TypeError(
                f"expected int max_dim and max_exponent, got {self.max_dim!r}, "
                f"{self.max_exponent!r}"
            )
        if self.max_dim < 1 or self.max_exponent < 0:
            raise ValueError(
                f"expected max_dim >= 1 and max_exponent >= 0, got {self.max_dim}, "
                f"{self.max_exponent}"
            )
        words = [PAD, BOS, EOS, PLACEHOLDER, SEPARATOR, *UNARY, *BINARY]
        words += [f"u_{i}" for i in range(self.max_dim)]
        words += ["+", "-", "INT+", "INT-", *(str(d) for d in range(10))]
        words += [f"N{m:0{MANTISSA_DIGITS}d}" for m in range(10**MANTISSA_DIGITS)]
        words += [f"E{e}" for e in range(-self.max_exponent, self.max_exponent + 1)]
        object.__setattr__(self, "tokens", tuple(words))
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(words)})

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def pad_id(self) -> int:
        """The id of :data:`PAD` (``<pad>``): 0 in every vocabulary."""
        return 0

    @property
    def bos_id(self) -> int:
        """The id of :data:`BOS` (``<bos>``): 1 in every vocabulary."""
        return 1

    @property
    def eos_id(self) -> int:
        """The id of :data:`EOS` (``<eos>``): 2 in every vocabulary."""
        return 2

    def __contains__(self, token: object) -> bool:
        return token in self._index  # type: ignore[attr-defined]

    def ids(self, tokens: Sequence[str], *, bos: bool = False, eos: bool = False) -> list[int]:
        """Token ids; ``bos`` / ``eos`` wrap the sequence. Unknown tokens raise ``ValueError``."""
        if isinstance(tokens, (str, bytes)):
            # (why) a str is a sequence of characters: 'add u_0' was refused as 'a', 'd', ...
            raise TypeError(
                f"expected a sequence of tokens, got the {type(tokens).__name__} {tokens!r:.60}; "
                f"split it first (tokens.split())"
            )
        index = self._index  # type: ignore[attr-defined]
        unknown = [t for t in tokens if t not in index]
        if unknown:
            # (why) both sizes: an exponent beyond E+-max_exponent is as unknown as a u_i
            # beyond max_dim, and the message named only max_dim
            raise ValueError(
                f"tokens {unknown[:5]} are not in the vocabulary (max_dim={self.max_dim}: "
                f"u_0 ... u_{self.max_dim - 1}; max_exponent={self.max_exponent}: "
                f"E-{self.max_exponent} ... E{self.max_exponent})"
            )
        out = [index[t] for t in tokens]
        return ([self.bos_id] if bos else []) + out + ([self.eos_id] if eos else [])

    def words(self, ids: Sequence[int], *, strip: bool = True) -> list[str]:
        """Tokens of ``ids``; with ``strip``, stop at the first ``<eos>`` and drop ``<bos>``/``<pad>``.

        Ids outside the vocabulary become ``"<unk:ID>"`` (which decodes as invalid), never an error.
        """
        out = []
        for i in ids:
            try:
                # (why) int() truncated a float id (1.7 read as <bos>) and a row of a 2-d
                # tensor failed with "only one element tensors can be converted"
                i = operator.index(i)
            except TypeError:
                raise TypeError(
                    f"expected a sequence of integer ids, got an element {i!r}"
                ) from None
            word = self.tokens[i] if 0 <= i < len(self.tokens) else f"<unk:{i}>"
            if strip:
                if word == EOS:
                    break
                if word in (BOS, PAD):
                    continue
            out.append(word)
        return out
