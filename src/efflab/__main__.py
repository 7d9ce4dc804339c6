import sys

from efflab.cli import main

sys.exit(main())
