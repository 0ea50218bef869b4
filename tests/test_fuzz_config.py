"""Property-based: the repo's own experiment files, mutated (lines deleted, duplicated,
re-indented, values swapped for other types, unicode spliced in), always get ``rlcore validate``
exit 0 or 2 with a message, never a traceback, within a bounded time each."""

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlcore.cli import main

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "experiments").glob("*.yaml"))
# Values of other types and shapes, hostile ones included.
VALUES = ["[]", "{}", "-1", "0", "1e999", "-.inf", ".nan", "null", "true", "on", "010", "0x1F",
          '"x"', "ü", "[1, [2, [3]]]", "{a: {b: c}}", "&a x", "*a", "!!int x", "!!binary AAAA",
          "9" * 60, "x" * 300, "'", "[", "{a: 1, a: 2}", "!!python/name:os.system", "- 1",
          "1:30", "2001-12-14", "~", ": :", "\"\\x00\"", "1_000"]

line_index = st.integers(0, 200)
MUTATION = st.one_of(
    st.tuples(st.just("delete"), line_index),
    st.tuples(st.just("duplicate"), line_index),
    st.tuples(st.just("retype"), line_index, st.sampled_from(VALUES)),
    st.tuples(st.just("splice"), line_index, st.integers(0, 80),
              st.text(min_size=1, max_size=3)),
    st.tuples(st.just("indent"), line_index, st.integers(-4, 4)),
)


def mutate(text: str, mutations) -> str:
    lines = text.splitlines()
    for kind, i, *args in mutations:
        if not lines:
            break
        i %= len(lines)
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "retype":
            key, sep, _ = lines[i].partition(":")
            lines[i] = f"{key}: {args[0]}" if sep else f"{lines[i]} {args[0]}"
        elif kind == "splice":
            at = min(args[0], len(lines[i]))
            lines[i] = lines[i][:at] + args[1] + lines[i][at:]
        else:
            shift = args[0]
            lines[i] = " " * shift + lines[i] if shift > 0 else lines[i][-shift:]
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(900)
@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(source=st.sampled_from(FILES), mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_experiment_files_get_exit_0_or_2_never_a_traceback(tmp_path, capsys, source,
                                                                    mutations):
    path = tmp_path / source.name
    path.write_text(mutate(source.read_text(), mutations), encoding="utf-8")
    t0 = time.perf_counter()
    code = main(["validate", str(path)])  # any exception but a user error escapes: a failure
    seconds = time.perf_counter() - t0
    out, err = capsys.readouterr()
    assert code in (0, 2), (code, out, err)
    assert "Traceback" not in out + err
    if code == 2:
        assert err.startswith("error: ") and len(err.splitlines()[0]) > len("error: ")
    assert seconds < 30, f"validate took {seconds:.1f} s"  # a bound (envs are built), not a target
