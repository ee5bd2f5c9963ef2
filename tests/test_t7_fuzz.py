"""The reader on thousands of mutated files (binary and ascii, seeded, no oracle needed): each
loads or raises T7FormatError, and nothing else. The ascii mutations put values outside
their type into storages, sizes and strides (the reader's overflow crashes). A longer run:
``benchmarks/fuzz_t7.py --cases N``."""

from luatorch_port.t7 import fuzz

FUZZ_SEED = 1008
FUZZ_CASES = 4000


def test_fuzz_reader_raises_only_format_errors():
    result = fuzz.run(FUZZ_CASES, seed=FUZZ_SEED)
    assert result["other"] == [], result["other"][:5]
    assert result["cases"] == FUZZ_CASES
    assert result["loaded"] > 0 and result["T7FormatError"] > FUZZ_CASES // 3, result
    # the mutations do reach values outside their type (the ascii overflow crashes)
    assert result["messages"].get("fits a type", 0) > 100, result["messages"]


def test_fuzz_cases_are_seeded():
    first = list(fuzz.cases(50, seed=3))
    assert first == list(fuzz.cases(50, seed=3))
    assert first != list(fuzz.cases(50, seed=4))


def test_ascii_seeds_read_as_their_binary_twins():
    import io

    from luatorch_port import t7
    for obj in fuzz.seed_objects():
        assert t7.dumps(t7.load(io.BytesIO(fuzz.ascii_dumps(obj)))) == \
            t7.dumps(t7.load(io.BytesIO(t7.dumps(obj))))
