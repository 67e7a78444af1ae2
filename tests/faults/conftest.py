from tests.axis.conftest import axis_factory  # noqa: F401 - the same real axis processes
