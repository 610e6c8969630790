"""Pure-Python reference model of the matching engine: the executable form of
docs/engine-semantics.md. Small and obviously correct; speed is irrelevant."""

from engine.reference.engine import ReferenceEngine
from engine.reference.model import fee, notional

__all__ = ["ReferenceEngine", "fee", "notional"]
