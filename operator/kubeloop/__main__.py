"""`python -m kubeloop`: run the operator."""

import sys

from kubeloop.main import main

sys.exit(main())
