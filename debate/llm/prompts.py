"""Versioned prompt templates: ``prompts/<name>.v<N>.md``.

A template has ``## system`` and ``## user`` parts; ``{{ var }}`` placeholders are filled by
:func:`render`, which fails loudly on a missing or unused variable. Each turn records the
template's name, version and content hash, so a changed prompt is visible in every run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from debate.core.errors import ConfigError

BUNDLED_DIR = Path(__file__).resolve().parents[2] / "prompts"
_FILE = re.compile(r"^(?P<name>[a-z0-9_-]+)\.v(?P<version>\d+)\.md$")
_VAR = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
_PART = re.compile(r"^## (system|user)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    hash: str
    system: str
    user: str

    @property
    def ref(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "hash": self.hash}

    def render(self, **values: str) -> tuple[str, str]:
        """(system, user) with every placeholder filled; missing or unused values are errors."""
        wanted = set(_VAR.findall(self.system)) | set(_VAR.findall(self.user))
        missing = wanted - values.keys()
        extra = values.keys() - wanted
        if missing or extra:
            raise ConfigError(
                f"prompt {self.name}.v{self.version}: "
                + (f"missing variables {sorted(missing)}" if missing else f"unused variables {sorted(extra)}")
            )

        def fill(text: str) -> str:
            return _VAR.sub(lambda m: values[m.group(1)], text)

        return fill(self.system).strip(), fill(self.user).strip()


def prompts_dir(configured: str = "") -> Path:
    return Path(configured) if configured else BUNDLED_DIR


@lru_cache(maxsize=64)
def load(name: str, directory: Path = BUNDLED_DIR, version: str | None = None) -> Prompt:
    """The template ``name`` at ``version`` (default: the highest version present)."""
    candidates = {}
    for p in directory.glob(f"{name}.v*.md"):
        m = _FILE.match(p.name)
        if m and m.group("name") == name:
            candidates[m.group("version")] = p
    if not candidates:
        raise ConfigError(f"no prompt template {name!r} in {directory}")
    chosen = version or max(candidates, key=int)
    if chosen not in candidates:
        raise ConfigError(f"prompt {name!r} has no version {chosen} in {directory}")
    raw = candidates[chosen].read_text(encoding="utf-8")
    parts = _PART.split(raw)
    # parts: [preamble, "system", text, "user", text]
    found = {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    if set(found) != {"system", "user"}:
        raise ConfigError(f"prompt {candidates[chosen]} needs a '## system' and a '## user' part")
    return Prompt(name, chosen, hashlib.sha256(raw.encode()).hexdigest()[:16], found["system"], found["user"])


def current_hashes(directory: Path = BUNDLED_DIR) -> dict[str, str]:
    """Name -> hash of the newest version of every agent prompt (rescoring compares these)."""
    return {name: load(name, directory).hash for name in ("proposer", "critic", "judge")}
