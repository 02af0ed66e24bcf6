"""Fake of A1111 1.10.1's ``modules`` package (installed as ``sys.modules["modules"]``).

Submodules import each other relatively, so they work under any package name.
"""
