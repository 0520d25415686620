from billing.tests.conftest import make_account, make_tariff  # noqa: F401  (fixtures)
from devices.tests.conftest import kek, make_meter  # noqa: F401  (fixtures)
