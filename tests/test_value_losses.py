"""Value-based losses against hand-computed numbers: double-Q targets, the C51 projection,
the quantile Huber loss."""

import types

import pytest
import torch

from rlcore.learner.batches import Batch
from rlcore.plugins.distributional.loss import categorical_projection, quantile_huber_loss
from rlcore.plugins.dqn.loss import bootstrap_values, loss as dqn_loss


def test_double_q_takes_the_online_argmax_and_the_target_value():
    online = torch.tensor([[1.0, 5.0, 2.0], [0.0, -1.0, 3.0]])
    target = torch.tensor([[10.0, 3.0, 7.0], [4.0, 9.0, 1.0]])
    assert bootstrap_values(target, online).tolist() == [3.0, 1.0]  # online argmax 1 and 2
    assert bootstrap_values(target, None).tolist() == [10.0, 9.0]  # plain DQN: target max


class FixedQ(torch.nn.Module):
    """Q(s, .) read from a table indexed by obs[:, 0]."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(torch.tensor(table))

    def forward(self, obs):
        return self.table[obs[:, 0].long()].unsqueeze(-1)


@pytest.mark.parametrize("double_q,expected_target", [(False, 1.0 + 0.5 * 8.0), (True, 1.0 + 0.5 * 2.0)])
def test_dqn_loss_by_hand(double_q, expected_target):
    online = FixedQ([[0.0, 3.0], [6.0, 1.0]])  # state 1: online argmax is action 0
    target = FixedQ([[0.0, 0.0], [2.0, 8.0]])  # state 1: target max is action 1
    batch = Batch(obs=torch.tensor([[0.0]]), action=torch.tensor([1]), reward=torch.tensor([1.0]),
                  discount=torch.tensor([0.5]), next_obs=torch.tensor([[1.0]]),
                  weight=torch.tensor([0.5]))
    cfg = types.SimpleNamespace(double_q=double_q, loss="huber", huber_delta=1.0)
    losses, metrics = dqn_loss({"q": online, "target_q": target}, batch, cfg, {})
    td = 3.0 - expected_target
    huber = 0.5 * td ** 2 if abs(td) <= 1 else abs(td) - 0.5
    assert metrics["td_abs"].tolist() == [pytest.approx(abs(td))]
    assert losses["td"].item() == pytest.approx(0.5 * huber)


def test_c51_projection_by_hand_including_mass_beyond_the_support():
    atoms = torch.tensor([-1.0, 0.0, 1.0])
    next_p = torch.tensor([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
    reward = torch.tensor([0.5, -5.0, 0.3, 2.0])
    discount = torch.tensor([1.0, 0.5, 0.0, 0.9])
    got = categorical_projection(next_p, reward, discount, atoms)
    expected = torch.tensor([
        # Tz = [-0.5, 0.5, 1.5 -> 1]: 0.2 split 0.1/0.1 onto atoms 0/1, 0.3 split 0.15/0.15
        # onto 1/2, 0.5 exactly on atom 2
        [0.1, 0.25, 0.65],
        [1.0, 0.0, 0.0],   # Tz = [-5.5, -5, -4.5]: everything below v_min lands on atom 0
        [0.0, 0.7, 0.3],   # terminated (d = 0): all mass at r = 0.3, split 0.7/0.3 onto 0 and 1
        [0.0, 0.0, 1.0],   # Tz = [1.1, 2, 2.9]: everything above v_max lands on atom 2
    ])
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got.sum(-1), torch.ones(4))


def test_quantile_huber_loss_by_hand():
    # tau = [0.25, 0.75], theta = [0, 1], target samples [0.5, 3], kappa = 1:
    # i=0: u = 0.5 -> 0.25 * 0.125;  u = 3 -> 0.25 * 2.5      mean 0.328125
    # i=1: u = -0.5 -> 0.25 * 0.125; u = 2 -> 0.75 * 1.5      mean 0.578125
    pred, target = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 3.0]])
    assert quantile_huber_loss(pred, target, 1.0).item() == pytest.approx(0.90625)
    # kappa = 2: L_2(u) / 2 with L_2(3) = 2 (3 - 1) = 4 (linear part) and L_2(2) = 0.5 * 4:
    # u = 0.5 -> 0.0625, 3 -> 2.0, -0.5 -> 0.0625, 2 -> 1.0
    # i=0: (0.25 * 0.0625 + 0.25 * 2.0) / 2; i=1: (0.25 * 0.0625 + 0.75 * 1.0) / 2
    assert quantile_huber_loss(pred, target, 2.0).item() == pytest.approx(0.640625)
