"""Packaging for marketlab: the library lives in lib/ (package_dir), jobs/ are shipped as files."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def _requirements(name: str) -> list[str]:
    lines = (HERE / "requirements" / name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


setup(
    name="marketlab",
    version="0.1.0",
    description="Spark + Delta + MLflow marketing analytics: from raw orders to strategies with measured effect",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.12",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    include_package_data=True,
    package_data={"marketlab": ["py.typed", "report/templates/*"]},
    install_requires=_requirements("base.in"),
    extras_require={"dev": _requirements("dev.in")},
    entry_points={"console_scripts": ["marketlab=marketlab.cli:main"]},
)
