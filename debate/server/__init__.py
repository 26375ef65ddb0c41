"""The HTTP face: the JSON API and the reviewer UI.

May import anything but the CLI.
"""
