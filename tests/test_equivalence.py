"""Same seed, same numbers across the refactor that gave every data regime one shape: the
evaluation returns, update counts and final-weight checksums below were recorded by
`benchmarks/equivalence.py` at commit 929c44b, before it (2 vCPU AMD EPYC, torch 2.13.0 CPU; the
same numbers on the AVX-512 machines since); below them, the same cases on a CPU without
AVX-512 and on an AMD EPYC with AVX-512 whose sums differ in the last bits."""

import pytest

from benchmarks.equivalence import CASES, run_case

RECORDED = {'ppo_cartpole_inline': {'evals': [[1024, 108.666667], [2048, 242.0]],
                         'env_steps': 2048,
                         'updates': 8,
                         'weights': '35f94c7a522ddfc7'},
 'dqn_cartpole': {'evals': [[1008, 95.0], [2000, 173.333333]],
                  'env_steps': 2000,
                  'updates': 750,
                  'weights': '01a16c22812098fc'},
 'trpo_pendulum': {'evals': [[2048, -1409.652844], [4096, -992.507486]],
                   'env_steps': 4096,
                   'updates': 2,
                   'weights': '452539cc7a5c2271'},
 'alphazero_tictactoe': {'evals': [[73, 1.0]],
                         'env_steps': 73,
                         'updates': 6,
                         'weights': 'ca1d0841d3e1aa61'}}


# The same on a CPU without AVX-512 (2 vCPU AMD EPYC, AVX2; torch picks its kernels by the
# CPU's vector extensions, so the last bits of a sum differ, and with them a few evaluation
# returns): recorded at e253b75, the numbers the code gives there and after on that CPU.
RECORDED_AVX2 = {'alphazero_tictactoe': {'env_steps': 73,
                         'evals': [[73, 1.0]],
                         'updates': 6,
                         'weights': 'e866cec355e7e355'},
 'dqn_cartpole': {'env_steps': 2000,
                  'evals': [[1008, 95.0], [2000, 173.666667]],
                  'updates': 750,
                  'weights': 'e2f8cf20d2c004ce'},
 'ppo_cartpole_inline': {'env_steps': 2048,
                         'evals': [[1024, 108.666667], [2048, 242.0]],
                         'updates': 8,
                         'weights': 'a46cfc8e0be2e49a'},
 'trpo_pendulum': {'env_steps': 4096,
                   'evals': [[2048, -1407.410722], [4096, -1012.669585]],
                   'updates': 2,
                   'weights': '39c09bd12746f4fc'}}

# The same on an AMD EPYC with AVX-512 (2 vCPU, cpu family 25 model 17, avx512f ... avx512_bf16):
# torch takes its AVX-512 kernels there too, yet the last bits of its sums differ from those of
# the AVX-512 machines the first numbers came from (DQN's equal the AVX2 ones). Recorded
# 2026-12-04 at f20626e; 6e4e252 gives the same numbers on that CPU, so they are the code's
# since the AVX2 numbers were recorded, not a change. A run must give one of its CPU kind's sets.
RECORDED_AVX512_ZEN4 = {'alphazero_tictactoe': {'env_steps': 73,
                         'evals': [[73, 1.0]],
                         'updates': 6,
                         'weights': 'ae4428b75fca82f9'},
 'dqn_cartpole': RECORDED_AVX2['dqn_cartpole'],
 'ppo_cartpole_inline': {'env_steps': 2048,
                         'evals': [[1024, 108.666667], [2048, 242.0]],
                         'updates': 8,
                         'weights': '3ff5c65c7252143f'},
 'trpo_pendulum': {'env_steps': 4096,
                   'evals': [[2048, -1410.216885], [4096, -979.286493]],
                   'updates': 2,
                   'weights': '3a0bf808a0e06103'}}
RECORDED_BY_CPU = {"AVX512": (RECORDED, RECORDED_AVX512_ZEN4), "AVX2": (RECORDED_AVX2,)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_seed_gives_the_numbers_recorded_before_the_refactor(name):
    import torch

    kind = torch.backends.cpu.get_cpu_capability()
    assert kind in RECORDED_BY_CPU, (
        f"no numbers recorded for a {kind} CPU: record them with benchmarks/equivalence.py at a "
        "commit known to give the recorded numbers on another CPU kind")
    got = run_case(name)
    assert any(got == recorded[name] for recorded in RECORDED_BY_CPU[kind]), (
        f"{name} on a {kind} CPU gave {got}, none of the numbers recorded for that kind: "
        f"{[recorded[name] for recorded in RECORDED_BY_CPU[kind]]}")
