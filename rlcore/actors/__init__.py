"""The actor layer: the one env loop (worker), inline and Ray pools, restarts and timeouts, and
Ray start-up."""
