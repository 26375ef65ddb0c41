"""Model clients: the OpenAI-compatible client, rate limits (in-process and shared), prompts and
the fake OpenAI-compatible server used by tests and benchmarks.

May import core and store; never the engine, jobs, wiki or a face.
"""
