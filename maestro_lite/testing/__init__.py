"""Test doubles for maestro-lite users: scripted models, an OpenAI-compatible server, and a
fast deterministic embedder."""

from ..embeddings.hashing import HashingEmbedder
from ..models.scripted import FunctionModel, ModelCall, ScriptedModel
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
