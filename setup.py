"""The one compiled module (everything else is in pyproject.toml): see its source for why."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "reachwatch.model._jsontext",
            ["reachwatch/model/_jsontext.c"],
            extra_compile_args=["-O2", "-Wall", "-Werror"],
        )
    ]
)
