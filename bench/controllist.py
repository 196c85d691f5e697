"""Control-list lookups at a million entries against a thousand, in the same run.

    python -m bench.controllist [--entries 1000000] [--baseline 1000] [--lookups 20000]

Builds both lists as central would (`gate.screening.controllist.build`: entries packed, keys
hashed and sorted), decodes them as a gate loads them, then times lookups the way the gate makes
them (`ControlList.lookup`: document number + issuing state, and folded name + birth date), for
travellers who are not on the list (the common case) and for ones who are. The figure that
matters is the ratio: a lookup must not get slower as the list grows. Prints one table;
docs/benchmarks.md records a run.
"""
from __future__ import annotations

import argparse
import random
import statistics
import string
import time

from gate.screening import controllist as CL

LETTERS = string.ascii_uppercase


def entries(n: int, seed: int = 1):
    rng = random.Random(seed)
    for i in range(n):
        word = lambda k: "".join(rng.choice(LETTERS) for _ in range(k))   # noqa: E731
        if i % 4 == 0:   # a document only (lost, stolen)
            yield CL.Entry(f"E{i}", issuer=rng.choice(("NLD", "DEU", "FRA", "USA")), number=word(2) + str(i).zfill(7),
                           category="stolen_document")
        else:
            yield CL.Entry(f"E{i}", surname=word(7), given_names=f"{word(5)} {word(4)}",
                           birth_date=f"19{rng.randrange(30, 99)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}",
                           category="watch", issuer="TWN" if i % 3 else "", number=str(300_000_000 + i) if i % 3 else "")


def queries(n: int, seed: int):
    rng = random.Random(seed)
    for _ in range(n):
        yield CL.Query("TWN", str(rng.randrange(10**8, 10**9)), "".join(rng.choice(LETTERS) for _ in range(8)),
                       "".join(rng.choice(LETTERS) for _ in range(6)), "19" + str(rng.randrange(30, 99)) + "0615")


def prepare(n: int, lookups: int) -> dict:
    t = time.perf_counter()
    listed = list(entries(n))
    data = CL.build(listed, serial=1)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    cl = CL.ControlList(CL.decode(data))
    load_s = time.perf_counter() - t
    rng = random.Random(3)
    present = [e for e in (listed[rng.randrange(n)] for _ in range(lookups // 5)) if e.surname]
    hits = [CL.Query(e.issuer or "NLD", e.number or "X", e.surname, e.given_names, e.birth_date) for e in present]
    return {"entries": n, "bytes": len(data), "build_s": build_s, "load_s": load_s, "list": cl,
            "queries": {"miss": list(queries(lookups, seed=7)), "hit": hits}, "times": {"miss": [], "hit": []}}


def time_lookups(r: dict, kind: str, qs) -> None:
    cl, out = r["list"], r["times"][kind]
    for q in qs:
        t = time.perf_counter_ns()
        found = cl.lookup(q)
        out.append(time.perf_counter_ns() - t)
        if kind == "hit":
            assert found, q


def measure(runs: list[dict], chunk: int = 200) -> None:
    """Both lists' lookups interleaved in chunks, so a busy machine slows both alike."""
    for kind in ("miss", "hit"):
        n = len(runs[0]["queries"][kind])
        for i in range(0, n, chunk):
            for r in runs:
                time_lookups(r, kind, r["queries"][kind][i:i + chunk])
    for r in runs:
        for kind, times in r["times"].items():
            times.sort()
            r[kind] = {"n": len(times), "mean_us": statistics.fmean(times) / 1000,
                       "p50_us": times[len(times) // 2] / 1000, "p99_us": times[int(len(times) * 0.99)] / 1000}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--baseline", type=int, default=1_000)
    ap.add_argument("--lookups", type=int, default=20_000)
    args = ap.parse_args(argv)
    base = prepare(args.baseline, args.lookups)
    big = prepare(args.entries, args.lookups)
    measure([base, big])
    print(f"{'entries':>10} {'file MiB':>9} {'build s':>8} {'load s':>7} {'miss p50 µs':>12} {'miss p99 µs':>12} "
          f"{'hit p50 µs':>11} {'hit p99 µs':>11}")
    for r in (base, big):
        print(f"{r['entries']:>10} {r['bytes'] / 2**20:>9.1f} {r['build_s']:>8.2f} {r['load_s']:>7.3f} "
              f"{r['miss']['p50_us']:>12.1f} {r['miss']['p99_us']:>12.1f} {r['hit']['p50_us']:>11.1f} "
              f"{r['hit']['p99_us']:>11.1f}")
    for kind in ("miss", "hit"):
        print(f"{kind}: p50 at {big['entries']} entries / at {base['entries']} = "
              f"{big[kind]['p50_us'] / base[kind]['p50_us']:.2f}x (mean {big[kind]['mean_us'] / base[kind]['mean_us']:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
