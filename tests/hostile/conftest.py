from tests.axis.conftest import axis, axis_factory  # noqa: F401 - real axis processes
from tests.e2e.conftest import province  # noqa: F401 - a province of real gateways
