"""What rollout actors run: sampling policies and numpy forward passes over the published
weights. Nothing in this package imports torch, so an actor whose plugin offers a numpy policy
never loads it."""
