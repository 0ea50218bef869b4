"""Shared text of a valid experiment, and a schema walker, for the config and CLI tests."""

# A valid experiment, copied from experiments/ppo_cartpole.yaml so that retuning the demo does not
# break these tests (test_shipped_experiments_validate checks the real files).
BASE = """\
algorithm: ppo
seed: 0
env:
  id: CartPole-v1
  num_envs: 8            # in all, split over the actors (4 each with 2; 8 inline)
rollout:
  num_actors: 2
  fragment_length: 32
learner:
  lr: 1.0e-3
  lr_schedule: linear
  num_epochs: 20
  minibatch_size: 256
  max_grad_norm: 0.5
algo:
  gamma: 0.98
  gae_lambda: 0.8
  clip_coef: 0.2
  clip_schedule: linear
  ent_coef: 0.0
stop:
  num_env_steps: 100000
  eval_return: 500       # stop early once the greedy policy is perfect
eval:
  every_env_steps: 5000
  episodes: 10
checkpoint:
  every_env_steps: 50000
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def leaf_keys(model, prefix=""):
    """(dotted key, field info) for every leaf field of a pydantic config model."""
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and hasattr(ann, "model_fields"):
            yield from leaf_keys(ann, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", info
