"""The debate engine: graph, agents, backends, retrieval, run execution and its database work,
checkpointer, consensus and transcripts.

May import core, store, kb, llm and offline; never jobs, wiki or a face.
"""
