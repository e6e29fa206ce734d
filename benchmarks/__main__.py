"""``python -m benchmarks [--quick] [--database auto|postgresql|sqlite] ...``"""

import sys

from .runner import main

sys.exit(main())
