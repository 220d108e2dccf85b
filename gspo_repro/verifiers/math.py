"""Final-answer extraction and integer comparison (synthetic math and real AIME'24)."""

from __future__ import annotations

import re

_INT = r"[-+]?\d{1,3}(?:,\d{3})+(?!\d)|[-+]?\d+"
_ANSWER_IS = re.compile(r"answer\s*(?:is|:|=)?\s*[:=]?\s*\$?\s*(" + _INT + r")", re.IGNORECASE)
_NUMBER = re.compile(_INT)


def _boxed(text: str) -> list[str]:
    """Contents of every \\boxed{...} / \\fbox{...}, braces balanced."""
    out = []
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append(text[m.end():i - 1])
    return out


def _to_int(s: str) -> int | None:
    s = s.strip().strip("$ ").replace(",", "").replace("{,}", "").replace("\\!", "")
    s = re.sub(r"^\\text\{(.*)\}$", r"\1", s).strip()
    m = re.fullmatch(r"([-+]?\d+)(?:\.0*)?", s)
    return int(m.group(1)) if m else None


def extract_answer(text: str, strict: bool = False) -> int | None:
    """The final integer answer in ``text``, or None.

    The last ``\\boxed{}`` wins. Unless ``strict``, fall back to the last "answer is N" and
    then to the last number in the text, as Qwen's math evaluation does. RL rewards use
    ``strict`` so that a truncated chain of steps cannot earn credit by its last number.
    Commas as thousands separators and leading zeros are accepted ("1,000", "025").
    """
    boxed = _boxed(text)
    if boxed:
        return _to_int(boxed[-1])
    if strict:
        return None
    found = _ANSWER_IS.findall(text)
    if found:
        return _to_int(found[-1])
    numbers = _NUMBER.findall(text)
    return _to_int(numbers[-1]) if numbers else None


def math_correct(text: str, reference: str | int, strict: bool = False) -> bool:
    """Whether the answer extracted from ``text`` equals ``reference`` as an integer."""
    ref = reference if isinstance(reference, int) else _to_int(str(reference))
    if ref is None:
        raise ValueError(f"math reference {reference!r} is not an integer")
    got = extract_answer(text, strict=strict)
    return got is not None and got == ref
