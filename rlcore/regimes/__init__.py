"""The data regimes (trajectory, transition, game): each supplies its round, its buffer, its
start-up checks and the state it adds to checkpoints and the summary."""
