"""The HTTP layer: read models and queries, reviewer auth, the debate runner and the reviewer UI.

:mod:`debate.server.api` builds the FastAPI app from these; nothing here starts a server by itself.
"""
