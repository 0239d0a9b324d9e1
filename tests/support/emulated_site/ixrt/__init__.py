"""Placeholder that tests/support/emulated-tensorrt puts first on PYTHONPATH: importing it loads the
stand-in of the generation named in $ALBERT_IXRT_EMULATED_TRT (under its own module name)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from trt_standin import standin_for_import  # noqa: E402

sys.modules[__name__] = standin_for_import(__name__)
