"""Same seed, same numbers across the refactor that gave every data regime one shape: the
evaluation returns, update counts and final-weight checksums below were recorded by
`benchmarks/equivalence.py` at commit 929c44b, before it (2 vCPU AMD EPYC, torch 2.13.0 CPU)."""

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


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_seed_gives_the_numbers_recorded_before_the_refactor(name):
    assert run_case(name) == RECORDED[name]
