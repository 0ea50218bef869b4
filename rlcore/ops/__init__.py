"""Pure math shared by plugins: returns, advantages, gradient noise scale, n-step returns,
target-network updates."""
