"""Identity: the only package that sees raw identifiers (normalise, tokenise, encode, link)."""

from sim_pipeline.identity.link import link
from sim_pipeline.identity.pseudonymise import IDENTITY_COLUMNS, pseudonymise
from sim_pipeline.identity.tokens import DEMO_KEY, Tokeniser

__all__ = ["DEMO_KEY", "IDENTITY_COLUMNS", "Tokeniser", "link", "pseudonymise"]
