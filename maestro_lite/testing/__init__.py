"""Test doubles for maestro-lite users: scripted models, an OpenAI-compatible server, and a
fast deterministic embedder."""

from ..models.scripted import FunctionModel, ModelCall, ScriptedModel
from .hashing import HashingEmbedder
from .openai_server import (
    Fault,
    FaultRates,
    OpenAICompatibleServer,
    Responder,
    responder_from,
)

__all__ = [
    "Fault",
    "FaultRates",
    "FunctionModel",
    "HashingEmbedder",
    "ModelCall",
    "OpenAICompatibleServer",
    "Responder",
    "ScriptedModel",
    "responder_from",
]
