import sys

from kerastune_nlp.cli import main

sys.exit(main())
