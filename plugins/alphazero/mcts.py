"""Monte Carlo tree search with PUCT (Kaplan's notes §8.6; Silver et al. 2017).

At a node s the search descends along argmax_a Q(s,a) + U(s,a) with

    U(s,a) = c_puct * p(a|s) * sqrt(sum_b N(s,b)) / (1 + N(s,a)),
    Q(s,a) = W(s,a) / N(s,a)   (0 for unvisited moves),

where p is the network's prior (masked to legal moves, renormalized), N the visit counts and W
the summed leaf values, all from the view of the player to move at s. A leaf is expanded with
one network evaluation f(s) = (p, v); v (from the leaf's mover's view) is backed up the path,
its sign flipping at every node whose mover is the other player. Terminal leaves are scored by
the game itself. The move is then drawn from pi(a) ∝ N(s,a)^(1/tau).

Batching: ``search`` runs many trees at once (one per game being played) and, with
``leaves_per_tree > 1``, collects several leaves per tree under a virtual loss (each edge on a
pending path counts as ``virtual_loss`` extra visits that lost) so one forward pass evaluates
``trees x leaves_per_tree`` positions. Trees are reused between moves (``advance``). Dirichlet
noise is mixed into the root prior during self-play: p = (1 - eps) p + eps Dir(alpha).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from rlcore.envs.games.base import IllegalMoveError

# evaluate(obs [B, C, H, W] float32, legal [B, A] bool) -> (priors [B, A], values [B])
Evaluator = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class Node:
    """A position in the tree; edge statistics (prior P, visits N, value sum W) live on the node
    whose mover chooses among them."""

    __slots__ = ("game", "player", "legal", "P", "P_clean", "N", "W", "Q", "n", "children",
                 "expanded", "pending", "terminal_value")

    def __init__(self, game):
        self.game = game
        self.player = game.current_player()
        self.children: dict[int, Node] = {}
        self.expanded = False
        self.pending = False
        self.terminal_value = game.terminal_value(self.player) if game.is_terminal() else None
        self.legal = self.P = self.P_clean = self.N = self.W = self.Q = None
        self.n = 0.0  # sum_b N(s, b), kept as a float for speed

    @property
    def is_terminal(self) -> bool:
        return self.terminal_value is not None

    def expand(self, prior: np.ndarray) -> None:
        self.legal = self.game.legal_mask()
        p = np.where(self.legal, prior, 0.0)
        total = p.sum()
        p = p / total if total > 0 else self.legal / self.legal.sum()
        self.P = self.P_clean = p
        self.N = np.zeros(len(p))
        self.W = np.zeros(len(p))
        self.Q = np.where(self.legal, 0.0, -np.inf)  # W / N, 0 unvisited, -inf illegal
        self.expanded = True

    def expand_uniform(self) -> None:
        """``expand`` with the uniform prior over the legal moves."""
        self.expand(self.game.legal_mask().astype(np.float64))

    def update(self, a: int, dn: float, dw: float) -> None:
        N, W = self.N, self.W
        N[a] += dn
        W[a] += dw
        self.n += dn
        self.Q[a] = W[a] / N[a] if N[a] > 0 else 0.0

    def child(self, action: int) -> "Node":
        node = self.children.get(action)
        if node is None:
            if not self.legal[action]:
                raise IllegalMoveError(f"{self.game.name}: search chose illegal move {action}; "
                                       f"legal moves: {np.flatnonzero(self.legal).tolist()}")
            game = self.game.clone()
            game.apply(action)
            node = self.children[action] = Node(game)
        return node


def puct_scores(node: Node, c_puct: float) -> np.ndarray:
    """Q(s,a) + U(s,a) for every move of an expanded node (-inf for illegal moves)."""
    N = node.N
    q = np.divide(node.W, N, out=np.zeros_like(node.W), where=N > 0)
    u = c_puct * node.P * math.sqrt(N.sum()) / (1.0 + N)
    return np.where(node.legal, q + u, -np.inf)


def select_action(node: Node, c_puct: float) -> int:
    """argmax_a Q + U (``puct_scores``, from the running Q); ties go to the lowest action."""
    return int((node.Q + node.P * (c_puct * math.sqrt(node.n) / (1.0 + node.N))).argmax())


def visit_policy(counts: np.ndarray, tau: float, legal: np.ndarray | None = None) -> np.ndarray:
    """pi(a) ∝ N(a)^(1/tau); tau == 0 is the limit: uniform over the most-visited moves.
    Raises IllegalMoveError if an illegal move has visits (a broken tree)."""
    counts = np.asarray(counts, np.float64)
    if legal is not None and (counts[~legal] > 0).any():
        bad = np.flatnonzero((counts > 0) & ~legal).tolist()
        raise IllegalMoveError(f"search visited illegal moves {bad}; legal moves: "
                               f"{np.flatnonzero(legal).tolist()}")
    if counts.sum() <= 0:
        raise IllegalMoveError("no move was visited: run at least one simulation before choosing")
    if tau == 0:
        best = counts == counts.max()
        return best / best.sum()
    scaled = counts / counts.max()  # N^(1/tau) without overflow for small tau
    pi = scaled ** (1.0 / tau)
    return pi / pi.sum()


def choose(root: Node, tau: float, rng: np.random.Generator | None) -> int:
    """A move drawn from the root's visit policy (``rng`` None: the lowest most-visited move).
    Raises IllegalMoveError if the result is not legal in the root's game."""
    pi = visit_policy(root.N, tau, root.legal)
    a = int(rng.choice(len(pi), p=pi)) if rng is not None else int(np.argmax(pi))
    if not root.game.legal_mask()[a]:
        raise IllegalMoveError(f"{root.game.name}: search returned illegal move {a}; legal "
                               f"moves: {root.game.legal_actions()}")
    return a


def backup(path: list[tuple[Node, int]], leaf_player: int, value: float,
           virtual_loss: float = 0.0) -> None:
    """Add ``value`` (from ``leaf_player``'s view) to every edge of ``path``, seen from each
    edge's mover; remove the path's virtual loss."""
    for node, a in path:
        v = value if node.player == leaf_player else -value
        node.update(a, 1.0 - virtual_loss, v + virtual_loss)


def advance(root: Node | None, action: int, game) -> Node:
    """The subtree after ``action`` (tree reuse), or a fresh root for ``game``."""
    if root is not None and action in root.children:
        node = root.children[action]
        if node.expanded:
            node.P = node.P_clean  # the noise of the old root's move is not kept
        return node
    return Node(game)


class MCTS:
    def __init__(self, evaluate: Evaluator, c_puct: float = 1.5, num_simulations: int = 50,
                 leaves_per_tree: int = 1, virtual_loss: float = 1.0,
                 dirichlet_alpha: float = 0.3, dirichlet_eps: float = 0.25):
        if num_simulations < 1 or leaves_per_tree < 1:
            raise ValueError("num_simulations and leaves_per_tree must be >= 1")
        self.evaluate, self.c_puct, self.num_simulations = evaluate, c_puct, num_simulations
        self.leaves_per_tree, self.virtual_loss = leaves_per_tree, virtual_loss
        self.alpha, self.eps = dirichlet_alpha, dirichlet_eps
        self.forward_passes = 0
        self.positions_evaluated = 0

    def _expand(self, nodes: list[Node]) -> np.ndarray:
        obs = np.stack([n.game.observation() for n in nodes])
        legal = np.stack([n.game.legal_mask() for n in nodes])
        priors, values = self.evaluate(obs, legal)
        self.forward_passes += 1
        self.positions_evaluated += len(nodes)
        for n, p in zip(nodes, priors):
            n.expand(p)
        return np.asarray(values, np.float64)

    def add_noise(self, root: Node, rng: np.random.Generator) -> None:
        idx = np.flatnonzero(root.legal)
        noise = np.zeros_like(root.P_clean)
        noise[idx] = rng.dirichlet([self.alpha] * len(idx))
        root.P = (1.0 - self.eps) * root.P_clean + self.eps * noise

    def _descend(self, root: Node) -> tuple[list[tuple[Node, int]], Node]:
        """Select a path to a leaf, adding the virtual loss to each edge."""
        path, node = [], root
        while node.expanded and not node.is_terminal:
            a = select_action(node, self.c_puct)
            path.append((node, a))
            node.update(a, self.virtual_loss, -self.virtual_loss)
            node = node.child(a)
        return path, node

    def search(self, roots: list[Node], rng: np.random.Generator | None = None,
               noise: bool = False) -> None:
        """``num_simulations`` new simulations in each root's tree, batched across trees."""
        fresh = [r for r in roots if not r.expanded and not r.is_terminal]
        if fresh:
            self._expand(fresh)
        if noise:
            for r in roots:
                if not r.is_terminal:
                    self.add_noise(r, rng)
        left = [0 if r.is_terminal else self.num_simulations for r in roots]
        while any(left):
            pending: list[tuple[list, Node]] = []
            for i, root in enumerate(roots):
                for _ in range(min(self.leaves_per_tree, left[i])):
                    path, leaf = self._descend(root)
                    if leaf.is_terminal:
                        backup(path, leaf.player, leaf.terminal_value, self.virtual_loss)
                        left[i] -= 1
                    elif leaf.pending:  # another pending path ends here: undo, wait for it
                        for node, a in path:
                            node.update(a, -self.virtual_loss, self.virtual_loss)
                        break
                    else:
                        leaf.pending = True
                        pending.append((path, leaf))
                        left[i] -= 1
            if pending:
                values = self._expand([leaf for _, leaf in pending])
                for (path, leaf), v in zip(pending, values):
                    leaf.pending = False
                    backup(path, leaf.player, float(v), self.virtual_loss)
