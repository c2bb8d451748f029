"""``python -m kubeloop_runtime.serve``."""

import sys

from kubeloop_runtime.serve import main

sys.exit(main())
