"""Copies the repository's datasets/ into the built package as layerc/_datasets.

The files stay in one place in git (datasets/, where a fresh clone finds them); a wheel
(`pip install .`) carries a copy so that an installed layerc finds its built-in datasets
from any directory. Editable installs read datasets/ in the clone itself.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATASETS = Path(__file__).resolve().parent / "datasets"


class BuildWithDatasets(build_py):
    def run(self):
        super().run()
        if not self.editable_mode:
            dest = Path(self.build_lib) / "layerc" / "_datasets"
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(DATASETS, dest)


setup(cmdclass={"build_py": BuildWithDatasets})
