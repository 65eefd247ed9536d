"""The suite's shared fixtures (tests/conftest.py): a small reverse corpus and one tiny trained model.
The repository root is on sys.path here (benchmarks/tests is a package), so ``tests`` imports."""

from tests.conftest import reverse_files, tiny_model  # noqa: F401
