"""Test doubles for maestro-lite users: scripted models and an OpenAI-compatible server."""

from ..models.scripted import FunctionModel, ModelCall, ScriptedModel
from .openai_server import Fault, FaultRates, OpenAICompatibleServer, Responder

__all__ = [
    "Fault",
    "FaultRates",
    "FunctionModel",
    "ModelCall",
    "OpenAICompatibleServer",
    "Responder",
    "ScriptedModel",
]
