"""Environment plugins, installed as ``rlcore.envs``; each registers ``rlcore/`` Gymnasium ids."""
