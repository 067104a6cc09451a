"""`python -m govdash ...` runs the same commands as `govdash ...`."""

from govdash.cli import main

raise SystemExit(main())
