"""Value-based losses against hand-computed numbers: double-Q targets, the C51 projection,
the quantile Huber loss."""

import math
import types
from pathlib import Path

import pytest
import torch

from rlcore.learner.batches import Batch
from rlcore.plugins.distributional.loss import categorical_projection, quantile_huber_loss
from rlcore.plugins.dqn.loss import bootstrap_values, loss as dqn_loss, soft_bootstrap_values


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


def one_step(action: int, weight: float = 1.0) -> Batch:
    """One replayed sample: s = 0, the given action, reward 1, discount 0.5, s' = 1."""
    return Batch(obs=torch.tensor([[0.0]]), action=torch.tensor([action]),
                 reward=torch.tensor([1.0]), discount=torch.tensor([0.5]),
                 next_obs=torch.tensor([[1.0]]), weight=torch.tensor([weight]))


@pytest.mark.parametrize("double_q,expected_target", [(False, 1.0 + 0.5 * 8.0), (True, 1.0 + 0.5 * 2.0)])
def test_dqn_loss_by_hand(double_q, expected_target):
    online = FixedQ([[0.0, 3.0], [6.0, 1.0]])  # state 1: online argmax is action 0
    target = FixedQ([[0.0, 0.0], [2.0, 8.0]])  # state 1: target max is action 1
    batch = one_step(action=1, weight=0.5)
    cfg = types.SimpleNamespace(double_q=double_q, loss="huber", huber_delta=1.0, soft_beta=None,
                                soft_bounds="none", munchausen_alpha=0.0, value_range=None)
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


def soft_loss_by_hand(soft_bounds: str):
    """One sample: s = 0, a = 1, reward 1, discount 0.5, s' = 1; online Q(0, .) = (0, 3),
    Q(1, .) = (6, 1); target Q(1, .) = (2, 8); beta 1, squared loss."""
    online = FixedQ([[0.0, 3.0], [6.0, 1.0]])
    target = FixedQ([[0.0, 0.0], [2.0, 8.0]])
    batch = one_step(action=1)
    cfg = types.SimpleNamespace(double_q=False, loss="mse", huber_delta=1.0, soft_beta=1.0,
                                soft_bounds=soft_bounds, munchausen_alpha=0.0, value_range=None)
    return dqn_loss({"q": online, "target_q": target}, batch, cfg, {})


def test_soft_target_is_the_free_energy_of_the_next_state_by_hand():
    # beta 1, Q_target(s') = (2, 8): V = log((e^2 + e^8) / 2); reward 1, discount 0.5.
    losses, _ = soft_loss_by_hand("none")
    v = math.log((math.exp(2.0) + math.exp(8.0)) / 2)
    assert losses["td"].item() == pytest.approx(0.5 * (3.0 - (1.0 + 0.5 * v)) ** 2, rel=1e-6)
    # exact and finite where exp(beta * Q) overflows; large beta -> max, small beta -> mean
    q = torch.tensor([[1000.0, 0.0], [3.0, 3.0]], dtype=torch.float64)
    assert soft_bootstrap_values(q, 10.0).tolist() == pytest.approx(
        [1000.0 - math.log(2) / 10.0, 3.0], abs=1e-9)
    q = torch.tensor([[1.0, 2.0, 6.0]], dtype=torch.float64)
    assert soft_bootstrap_values(q, 1e4).item() == pytest.approx(6.0, abs=1e-3)
    assert soft_bootstrap_values(q, 1e-6).item() == pytest.approx(3.0, abs=1e-4)


def test_soft_bounds_clip_the_target_into_the_online_networks_bounds_by_hand():
    # beta 1; the target's y = 1 + 0.5 log((e^2 + e^8) / 2) = 4.6547. The online network:
    # TQ = 1 + 0.5 log((e^6 + e^1) / 2) = 3.6568, Delta = TQ - Q(s, a) = 0.6568 (one sample),
    # d / (1 - d) = 1: [L, U] = [TQ + min(Delta, 0), TQ + max(Delta, 0)] = [3.6568, 4.3136],
    # so y is clipped down to U.
    losses, metrics = soft_loss_by_hand("clip")
    tq = 1.0 + 0.5 * math.log((math.exp(6.0) + math.exp(1.0)) / 2)
    upper = tq + (tq - 3.0)
    assert 1.0 + 0.5 * math.log((math.exp(2.0) + math.exp(8.0)) / 2) > upper
    assert losses["td"].item() == pytest.approx(0.5 * (3.0 - upper) ** 2, rel=1e-6)
    assert metrics["bounds_clipped"].item() == 1.0


def test_boltzmann_actors_sample_exp_beta_q_and_evaluate_greedily():
    import numpy as np

    from rlcore.plugins.dqn.networks import BoltzmannPolicy

    cfg = types.SimpleNamespace(soft_beta=2.0, eps_start=0.0, eval_eps=0.0)
    values = lambda obs: np.tile(np.array([[0.0, 0.5, 1.0]]), (len(obs), 1))  # noqa: E731
    policy = BoltzmannPolicy(values, 3, cfg, explore=True)
    a = policy.act(np.zeros((30_000, 1)), np.random.default_rng(0)).action
    p = np.exp(2.0 * np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(np.bincount(a, minlength=3) / 30_000, p / p.sum(), atol=0.01)
    greedy = BoltzmannPolicy(values, 3, cfg, explore=False)
    assert (greedy.act(np.zeros((5, 1)), np.random.default_rng(0)).action == 2).all()


@pytest.mark.parametrize("soft_beta,clip_low,expected_bonus", [
    (None, -5.0, 0.5 * (1.0 - 3.0)),   # advantage learning: alpha (Q(s, a) - max_b Q(s, b))
    (None, -1.0, 0.5 * -1.0),          # the gap clipped at l0 = -1
    # tau log pi(a|s) = Q(s, a) - beta^-1 log sum_b exp(beta Q(s, b)) = 1 - log(e^1 + e^3)
    (1.0, -5.0, 0.5 * (1.0 - math.log(math.exp(1.0) + math.exp(3.0)))),
    (1.0, -1.0, 0.5 * -1.0),
])
def test_munchausen_term_by_hand(soft_beta, clip_low, expected_bonus):
    # state 0 (s): online Q(s, 0) = 3; target Q(s, .) = (1, 3), the action taken is 0.
    # state 1 (s'): target Q(s', .) = (2, 8); reward 1, discount 0.5, weight 1, squared loss.
    online = FixedQ([[3.0, 0.0], [6.0, 1.0]])
    target = FixedQ([[1.0, 3.0], [2.0, 8.0]])
    batch = one_step(action=0)
    cfg = types.SimpleNamespace(double_q=False, loss="mse", huber_delta=1.0, soft_beta=soft_beta,
                                soft_bounds="none", munchausen_alpha=0.5, munchausen_clip=clip_low,
                                value_range=None)
    losses, metrics = dqn_loss({"q": online, "target_q": target}, batch, cfg, {})
    v_next = 8.0 if soft_beta is None else math.log((math.exp(2.0) + math.exp(8.0)) / 2)
    y = 1.0 + expected_bonus + 0.5 * v_next
    assert metrics["munchausen_bonus"].item() == pytest.approx(expected_bonus, rel=1e-6)
    assert losses["td"].item() == pytest.approx(0.5 * (3.0 - y) ** 2, rel=1e-5)
    # the best action under the target network gets no bonus with the hard limit
    batch.action = torch.tensor([1])
    _, metrics = dqn_loss({"q": online, "target_q": target}, batch,
                          types.SimpleNamespace(**{**vars(cfg), "soft_beta": None}), {})
    assert metrics["munchausen_bonus"].item() == 0.0


def test_distributional_advantage_learning_shifts_the_reward_by_the_expected_value_gap():
    from rlcore.plugins.distributional.loss import c51_loss, qr_loss

    class FixedOut(torch.nn.Module):  # [B, A, N] outputs read from a table by obs[:, 0]
        def __init__(self, table):
            super().__init__()
            self.table = torch.nn.Parameter(torch.tensor(table))

        def forward(self, obs):
            return self.table[obs[:, 0].long()]

    batch = one_step(action=0)
    # QR-DQN, one quantile (tau 1/2): target Q(s, .) = (1, 3), so the term is 0.5 * (1 - 3) = -1;
    # next state's best quantile 8: target 1 - 1 + 0.5 * 8 = 4; prediction 3: u = 1, loss 0.5 * 0.5
    cfg = types.SimpleNamespace(double_q=False, kappa=1.0, munchausen_alpha=0.5,
                                munchausen_clip=-5.0, value_range=None)
    online = FixedOut([[[3.0], [0.0]], [[0.0], [0.0]]])
    target = FixedOut([[[1.0], [3.0]], [[2.0], [8.0]]])
    losses, metrics = qr_loss({"q": online, "target_q": target}, batch, cfg, {})
    assert metrics["munchausen_bonus"].item() == pytest.approx(-1.0)
    assert losses["quantile"].item() == pytest.approx(0.5 * 0.5)
    # C51 on atoms (0, 10): target expected values (5, 10) at s, so the term is 0.5 * -5 -> clipped
    # at 0.5 * -1; the next state's best distribution is all on atom 10: Tz = 1 - 0.5 + 0.5 * 10 =
    # 5.5, split 0.45 / 0.55 onto atoms 0 and 10
    cfg = types.SimpleNamespace(double_q=False, v_min=0.0, v_max=10.0, num_atoms=2,
                                munchausen_alpha=0.5, munchausen_clip=-1.0)
    big = 50.0  # logits: softmax puts all but e^-50 of the mass on one atom
    online = FixedOut([[[0.0, math.log(3.0)], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    target = FixedOut([[[0.0, 0.0], [-big, big]], [[big, -big], [-big, big]]])
    losses, metrics = c51_loss({"q": online, "target_q": target}, batch, cfg, {})
    assert metrics["munchausen_bonus"].item() == pytest.approx(-0.5)
    # prediction (1/4, 3/4): cross-entropy to (0.45, 0.55)
    xent = -(0.45 * math.log(0.25) + 0.55 * math.log(0.75))
    assert losses["xent"].item() == pytest.approx(xent, rel=1e-5)
    cfg.munchausen_alpha = 0.0  # without the term: Tz = 6, split 0.4 / 0.6
    losses, metrics = c51_loss({"q": online, "target_q": target}, batch, cfg, {})
    assert "munchausen_bonus" not in metrics
    assert losses["xent"].item() == pytest.approx(-(0.4 * math.log(0.25) + 0.6 * math.log(0.75)),
                                                  rel=1e-5)


@pytest.mark.parametrize("value_range,expected_target", [
    (None, 1.0 + 0.5 * 8.0), ((0.0, 4.0), 4.0), ((5.5, 9.0), 5.5)])
def test_dqn_targets_are_clipped_into_the_value_range_by_hand(value_range, expected_target):
    online = FixedQ([[0.0, 3.0], [6.0, 1.0]])
    target = FixedQ([[0.0, 0.0], [2.0, 8.0]])  # y = 1 + 0.5 * max(2, 8) = 5
    batch = one_step(action=1)
    cfg = types.SimpleNamespace(double_q=False, loss="mse", huber_delta=1.0, soft_beta=None,
                                soft_bounds="none", munchausen_alpha=0.0, value_range=value_range)
    losses, _ = dqn_loss({"q": online, "target_q": target}, batch, cfg, {})
    assert losses["td"].item() == pytest.approx(0.5 * (3.0 - expected_target) ** 2)


@pytest.mark.parametrize("value_range,loss", [
    # quantiles (tau 1/4, 3/4) predicted (0, 2); next state's best action (mean 5) has quantiles
    # (2, 8): targets 1 + 0.5 * (2, 8) = (2, 5), kappa 1
    # no clip: u = [[2, 5], [0, 3]], Huber [[1.5, 4.5], [0, 2.5]], weights |tau - 1{u < 0}| =
    # 1/4 (row 0) and 3/4 (row 1): (1/4 * 6 + 3/4 * 2.5) / 2 = 1.6875
    (None, (0.25 * (1.5 + 4.5) + 0.75 * (0.0 + 2.5)) / 2),
    # clipped into [0, 3]: targets (2, 3), u = [[2, 3], [0, 1]], Huber [[1.5, 2.5], [0, 0.5]]
    ((0.0, 3.0), (0.25 * (1.5 + 2.5) + 0.75 * (0.0 + 0.5)) / 2),
    # into [2.5, 4]: targets (2.5, 4), u = [[2.5, 4], [0.5, 2]], Huber [[2, 3.5], [0.125, 1.5]]
    ((2.5, 4.0), (0.25 * (2.0 + 3.5) + 0.75 * (0.125 + 1.5)) / 2),
])
def test_qrdqn_target_samples_are_clipped_into_the_value_range_by_hand(value_range, loss):
    from rlcore.plugins.distributional.loss import qr_loss

    class FixedOut(torch.nn.Module):
        def __init__(self, table):
            super().__init__()
            self.table = torch.nn.Parameter(torch.tensor(table))

        def forward(self, obs):
            return self.table[obs[:, 0].long()]

    online = FixedOut([[[0.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    target = FixedOut([[[0.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [2.0, 8.0]]])
    cfg = types.SimpleNamespace(double_q=False, kappa=1.0, munchausen_alpha=0.0,
                                munchausen_clip=-1.0, value_range=value_range)
    losses, _ = qr_loss({"q": online, "target_q": target}, one_step(action=0), cfg, {})
    assert losses["quantile"].item() == pytest.approx(loss)


@pytest.mark.parametrize("algorithm", ["dqn", "qrdqn"])
def test_a_value_range_with_low_not_below_high_is_refused(algorithm):
    from pydantic import ValidationError

    from rlcore.plugins.distributional.config import QRDQNConfig
    from rlcore.plugins.dqn.config import DQNConfig

    cls = {"dqn": DQNConfig, "qrdqn": QRDQNConfig}[algorithm]
    assert cls(value_range=[0, 100]).value_range == (0.0, 100.0)
    with pytest.raises(ValidationError, match=r"algo.value_range \[5.0, 5.0\]: low must be below high"):
        cls(value_range=[5, 5])


def test_value_range_clips_targets_and_counts_those_outside_by_hand():
    from rlcore.ops.targets import clip_to_value_range

    extra = {}
    got = clip_to_value_range(torch.tensor([-2.0, 0.0, 50.0, 100.0, 130.0]), (0.0, 100.0), extra)
    assert got.tolist() == [0.0, 0.0, 50.0, 100.0, 100.0]  # the ends themselves are inside
    assert extra["target_below_range"].item() == pytest.approx(0.2)
    assert extra["target_above_range"].item() == pytest.approx(0.2)


def test_dqn_loss_reports_the_targets_its_value_range_clipped():
    # target 1 + 0.5 * 8 = 5 lies above [0, 4]: clipped to 4, td = 3 - 4
    cfg = types.SimpleNamespace(double_q=False, loss="huber", huber_delta=1.0, soft_beta=None,
                                soft_bounds="none", munchausen_alpha=0.0, value_range=(0.0, 4.0))
    losses, metrics = dqn_loss({"q": FixedQ([[0.0, 3.0], [6.0, 1.0]]),
                                "target_q": FixedQ([[0.0, 0.0], [2.0, 8.0]])},
                               one_step(action=1), cfg, {})
    assert metrics["td_abs"].tolist() == [pytest.approx(1.0)]
    assert metrics["target_above_range"].item() == 1.0
    assert metrics["target_below_range"].item() == 0.0


def test_value_range_warning_names_the_range_the_side_and_the_fix():
    from rlcore.regimes.transition import value_range_warning

    algo = types.SimpleNamespace(value_range=(0.0, 100.0))
    msg = value_range_warning(algo, {"target_below_range": 1.0, "target_above_range": 0.0},
                              3040)
    assert msg.startswith("algo.value_range [0, 100] clipped 100% of the TD targets below its "
                          "low end 0 in the log window ending at env step 3,040")
    assert "set algo.value_range to your task's range, or to null" in msg
    msg = value_range_warning(algo, {"target_below_range": 0.0, "target_above_range": 0.95}, 10)
    assert "clipped 95% of the TD targets above its high end 100" in msg
    # what the DQN CartPole file itself sees (at most 5 % above) and plugins without the range
    assert value_range_warning(algo, {"target_below_range": 0.0,
                                      "target_above_range": 0.053}, 99808) is None
    assert value_range_warning(algo, {"loss": 1.0}, 10) is None


def test_a_cartpole_value_range_on_acrobot_warns_once(tmp_path, capsys):
    """Acrobot's returns are negative: CartPole's [0, 100] pins every target to 0."""
    from rlcore.run.lifecycle import train_experiment

    root = Path(__file__).resolve().parent.parent
    train_experiment(root / "experiments" / "dqn_cartpole.yaml", tmp_path / "run", [
        "env.id=Acrobot-v1", "stop.num_env_steps=3000", "algo.learning_starts=500",
        "stop.eval_return=null", "eval.every_env_steps=0", "checkpoint.every_env_steps=0"])
    err = capsys.readouterr().err
    assert err.count("rlcore: WARNING: algo.value_range [0, 100] clipped 100% of the TD "
                     "targets below its low end 0") == 1, err


def test_c51_reports_the_target_mass_its_support_clips_by_hand():
    from rlcore.plugins.distributional.loss import c51_loss
    from rlcore.regimes.transition import value_range_warning

    class Uniform(torch.nn.Module):  # logits 0: every atom 1/3 for both actions
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, obs):
            return torch.zeros(len(obs), 2, 3) + 0 * self.w

    # atoms [0, 1, 2]; reward -1.5, discount 0.5: Tz = [-1.5, -1, -0.5], all below v_min 0
    cfg = types.SimpleNamespace(v_min=0.0, v_max=2.0, num_atoms=3, double_q=False,
                                munchausen_alpha=0.0)
    batch = Batch(obs=torch.tensor([[0.0]]), action=torch.tensor([0]),
                  reward=torch.tensor([-1.5]), discount=torch.tensor([0.5]),
                  next_obs=torch.tensor([[1.0]]), weight=torch.tensor([1.0]))
    _, metrics = c51_loss({"q": Uniform(), "target_q": Uniform()}, batch, cfg, {})
    assert metrics["target_below_range"].item() == pytest.approx(1.0)
    assert metrics["target_above_range"].item() == 0.0
    # reward 1.5: Tz = [1.5, 2, 2.5], the mass of the last atom (1/3) above v_max 2
    batch.reward = torch.tensor([1.5])
    _, metrics = c51_loss({"q": Uniform(), "target_q": Uniform()}, batch, cfg, {})
    assert metrics["target_above_range"].item() == pytest.approx(1 / 3)
    msg = value_range_warning(cfg, {"target_below_range": 1.0, "target_above_range": 0.0}, 5)
    assert msg.startswith("algo.v_min/v_max [0, 2] clipped 100% of the target distributions' "
                          "mass below its low end 0")
    assert msg.endswith("set algo.v_min and algo.v_max to your task's range")
