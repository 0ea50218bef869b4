"""The run lifecycle every data regime shares: stop criteria, evaluations, checkpoints, Ctrl-C,
failures, the run summary and the one TensorBoard writer."""
