import sys

from flip.cli import main

sys.exit(main())
