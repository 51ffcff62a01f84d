import sys

from fgvc_ref.cli import main

sys.exit(main())
