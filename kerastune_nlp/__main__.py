"""`python -m kerastune_nlp ...`: the `kerastune-nlp` command."""

import sys

from kerastune_nlp.cli import main

sys.exit(main())
