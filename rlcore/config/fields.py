"""Field types the algorithm sections share, apart from the schema (so that a rollout actor
unpickling a plugin's config does not build the whole experiment schema)."""

from typing import Annotated

from pydantic import Field

# Layer widths of an MLP (``hidden_sizes`` in the algorithm sections): each at least 1.
Widths = Annotated[tuple[Annotated[int, Field(ge=1)], ...], Field(min_length=1)]
