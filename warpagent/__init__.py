"""warpagent: cyber hygiene scanner and WARP sharing agent for UK local public services."""

__version__ = "0.1.0"

from warpagent.startup import defer_iri_grammar

defer_iri_grammar()
