"""What the wiki reads: the scores list, target links, Related Hypotheses lists and export.

May import the engine and everything below it; never jobs or a face.
"""
