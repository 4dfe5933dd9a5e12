"""Only the optional C accelerator lives here; everything else is in pyproject.toml.

The accelerator is built by cffi (``accel/build_accel.py``). It is optional: when there is no C
compiler, or the build fails for any other reason, the install still succeeds, a warning is
printed, and Velaria runs on the pure-Python reference kernels (explain says
``backend=python``; ``velaria.accel.status()`` says why).
"""
import glob
import os

from setuptools import setup
from setuptools.command.build_ext import build_ext


class optional_build_ext(build_ext):
    """build_ext that turns a failed accelerator build into a warning."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler, missing headers, ... : fall back to reference
            self._skipped(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._skipped(exc)

    def _skipped(self, exc):
        # an accelerator left by an earlier build would load and run code older than the
        # sources (a new kernel's caller against an old module): remove it, so the status
        # and explain truthfully say that the reference kernels run
        for stale in glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                            "accel", "_velaria_accel*")):
            try:
                os.remove(stale)
            except OSError:
                pass
        msg = f"velaria: the C accelerator was not built ({type(exc).__name__}: {exc}); the reference kernels will be used"
        print("WARNING: " + msg)
        self.warn(msg)


try:
    import cffi  # noqa: F401  (a build requirement; guard anyway so the install never fails)
    _cffi = {"cffi_modules": ["accel/build_accel.py:ffibuilder"]}
except ImportError:  # pragma: no cover
    _cffi = {}

setup(cmdclass={"build_ext": optional_build_ext}, **_cffi)
