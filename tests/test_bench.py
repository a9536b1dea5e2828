"""`python -m simnet.bench compression` end to end, on a small gradient: it prints a row per
(method, format) with sane figures. (Its timings are figures to read, never asserted.)"""

from __future__ import annotations

import re
import time

from simnet.bench import compression as bench
from simnet.compression import threads


def test_compression_bench_prints_a_row_per_method_and_format(capsys):
    assert bench.main(["--n", "4096", "--methods", "qsgd", "nuqsgd", "--formats", "fixed",
                       "entropy", "--repeats", "1", "--rounds", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^(qsgd|nuqsgd) +(fixed|entropy) +([\d.]+) +([\d.]+) +([\d.]+) +"
                      r"([\d.]+) +([\d.]+) +([\d.]+)$", out, re.M)
    assert [(m, f) for m, f, *_ in rows] == [("qsgd", "fixed"), ("qsgd", "entropy"),
                                             ("nuqsgd", "fixed"), ("nuqsgd", "entropy")]
    for _, fmt, enc, dec, bpc, mem, warm, ent in rows:
        assert float(enc) > 0 and float(dec) > 0 and float(mem) > 0 and float(warm) > 0
        # 4 bits: fixed spends 4 bits a coordinate plus the scales; entropy fewer
        assert (4 < float(bpc) < 4.2) if fmt == "fixed" else (0 < float(bpc) < 4)
        assert float(ent) >= 1  # no payload beats the symbols' empirical entropy
    assert ("codec threads" in out) == (threads.THREADS > 1)


def test_best_time_takes_at_least_the_repeats_and_more_within_the_budget():
    calls = []
    assert bench.best_time(lambda: calls.append(1), 3) > 0 and len(calls) == 3
    calls.clear()
    bench.best_time(lambda: calls.append(1), 3, budget_s=0.02)
    assert 3 < len(calls) <= 1000  # a call of ~a microsecond: the cap, or the budget first
    calls.clear()
    bench.best_time(lambda: (calls.append(1), time.sleep(0.004)), 2, budget_s=0.02)
    assert 2 <= len(calls) <= 5  # each call sleeps >= 4 ms: 5 of them spend the 0.02 s


def test_thread_gain_is_a_ratio_of_side_by_side_timings():
    best, median = bench.thread_gain(trials=5, draws=1 << 16)
    assert best >= median > 0
