"""The learner: one update path for every regime, and the learner as a Ray actor."""
