"""Integration-test harness: real Synapse and PostgreSQL servers on 127.0.0.1,
plus a raw client-server API test client."""

from .matrix_client import MatrixError, TestUser, match
from .postgres import PostgresError, PostgresServer
from .synapse import SynapseError, SynapseServer, fresh_user

__all__ = [
    "MatrixError",
    "PostgresError",
    "PostgresServer",
    "SynapseError",
    "SynapseServer",
    "TestUser",
    "fresh_user",
    "match",
]
