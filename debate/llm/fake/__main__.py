"""``python -m debate.llm.fake``: run the fake OpenAI-compatible server standalone."""

import sys

from debate.llm.fake import main

sys.exit(main())
