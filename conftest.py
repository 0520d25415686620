"""The project's pytest plugin (`testing.plugin`): real services, and the fixtures shared by the
apps' tests. Registered here, once."""

pytest_plugins = ["testing.plugin"]
