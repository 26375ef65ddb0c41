"""Model clients: the OpenAI-compatible client (with its transport, streaming, attempt records
and failure handling), fitting prompts to context windows, rate limits (in-process and shared),
prompts, llama.cpp run locally, and the fake OpenAI-compatible server used by tests and
benchmarks.

May import core and store; never the engine, jobs, wiki or a face.
"""
