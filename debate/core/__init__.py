"""The domain vocabulary: types, the rubric, score display, diseases, genes, errors, config.

Imports nothing else of the package.
"""
