"""Does checking a bearer token take longer when more of the guess is right? Measured.

    python -m bench.tokentiming [--rounds 300] [--calls 2000] [--quick]

hookd's check (``hookd.api.access._matches``) compares the presented token with every configured
token using ``hmac.compare_digest``. This times it, in this process, for guesses that share 0,
half, or all but the last character with the configured token, for a 32-character token and a
4096-character one (long enough that a prefix-dependent compare would show plainly). As a
positive control the same guesses are timed with ``==`` on bytes (``memcmp``: it stops at the
first difference), which shows what a leak looks like with this method on this machine.

Method: ``--rounds`` rounds; in each, every (comparator, guess) pair in a shuffled order runs
``--calls`` calls, and the round's mean ns per call is one sample. For each comparator the
0-prefix and the all-but-last samples are compared: median difference, and a Mann-Whitney U
test (two-sided, normal approximation). A leak is a difference that is large (over 5 % of the
median) and significant (p < 0.001).
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable

from bench import common
from hookd.api.access import _matches

Comparator = Callable[[str, tuple[str, ...]], bool]


def naive(token: str, tokens: tuple[str, ...]) -> bool:
    """The positive control: stops at the first byte that differs."""
    given = token.encode()
    return any(given == t.encode() for t in tokens)


def guesses(secret: str) -> dict[str, str]:
    """Guesses of ``secret``'s length sharing 0, half, and all but one leading characters."""

    def wrong(c: str) -> str:
        return "b" if c == "a" else "a"

    n = len(secret)
    return {
        "0 leading": wrong(secret[0]) + secret[1:] if n > 1 else wrong(secret),
        "half": secret[: n // 2] + wrong(secret[n // 2]) + secret[n // 2 + 1 :],
        "all but last": secret[:-1] + wrong(secret[-1]),
    }


def time_rounds(
    comparators: dict[str, Comparator],
    tokens: tuple[str, ...],
    cases: dict[str, str],
    *,
    rounds: int,
    calls: int,
) -> dict[tuple[str, str], list[float]]:
    samples: dict[tuple[str, str], list[float]] = {(c, g): [] for c in comparators for g in cases}
    pairs = list(samples)
    clock = time.perf_counter_ns
    for _ in range(rounds):
        random.shuffle(pairs)
        for comparator, guess in pairs:
            fn, token = comparators[comparator], cases[guess]
            start = clock()
            for _ in range(calls):
                fn(token, tokens)
            samples[(comparator, guess)].append((clock() - start) / calls)
    return samples


def mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation, ties averaged)."""
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(pooled)
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    r1 = sum(r for r, (_, group) in zip(ranks, pooled, strict=True) if group == 0)
    n1, n2 = len(a), len(b)
    u = r1 - n1 * (n1 + 1) / 2
    mean, sd = n1 * n2 / 2, math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    z = (u - mean) / sd if sd else 0.0
    return math.erfc(abs(z) / math.sqrt(2))


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.calls = 40, 500
    report = common.Report(name="tokentiming", quick=args.quick)
    table = report.table(
        f"ns per check, median of {args.rounds} rounds x {args.calls} calls",
        ["token", "comparator", "0 leading", "half", "all but last", "diff %", "p", "leak"],
    )
    comparators: dict[str, Comparator] = {"hookd (_matches)": _matches, "== (control)": naive}
    rng = random.Random(7)
    for length in (32, 4096):
        secret = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(length))
        tokens = (secret, "another-configured-token-0123456789")
        samples = time_rounds(
            comparators, tokens, guesses(secret), rounds=args.rounds, calls=args.calls
        )
        for name in comparators:
            med = {g: statistics.median(samples[(name, g)]) for g in guesses(secret)}
            diff = (med["all but last"] - med["0 leading"]) / med["0 leading"] * 100
            p = mann_whitney_p(samples[(name, "0 leading")], samples[(name, "all but last")])
            leak = abs(diff) > 5 and p < 0.001
            table.add(
                f"{length} chars", name, med["0 leading"], med["half"], med["all but last"],
                diff, f"{p:.2g}", "LEAKS" if leak else "no",
            )  # fmt: skip
            if name.startswith("hookd"):
                report.check(f"hookd, {length}-char token: |diff|", abs(diff), "<=", 5.0, "%")
    report.notes.append(
        "diff % = (all but last - 0 leading) / 0 leading; p: Mann-Whitney U, two-sided"
    )
    report.print()
    print(f"saved {report.save().relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
