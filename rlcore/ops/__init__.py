"""Pure math shared by plugins: returns, advantages, gradient noise scale."""
