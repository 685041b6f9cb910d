import sys

from luke.cli import main

sys.exit(main())
