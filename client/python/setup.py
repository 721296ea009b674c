"""The sandproc Python client. Built into build/client/python by CMake (the
messages and stubs are generated there); install it from that directory:

    python3 -m venv --system-site-packages v && v/bin/pip install build/client/python

(--system-site-packages: the protobuf runtime comes from Debian's python3-protobuf.)
"""
from setuptools import setup

setup(
    name="sandproc",
    version="0.1.0",
    description="Client of sandprocd, the sandbox process service (nng + protobuf)",
    packages=["sandproc", "sandproc.v1"],
    install_requires=["protobuf>=3.12"],
    python_requires=">=3.9",
)
