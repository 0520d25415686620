"""Test support, kept out of the production packages: the pytest plugin (`plugin`, registered
in the root conftest.py) and helpers the apps' tests import (`staff`, `customers`, `devices`,
`sms`, `billing`, `audit_locks`, `processes`)."""
