"""``python -m campaign_tui`` is ``campaign-tui``."""

import sys

from campaign_tui.cli import main

sys.exit(main())
