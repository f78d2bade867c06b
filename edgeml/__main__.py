import sys

from edgeml.cli import main

sys.exit(main())
