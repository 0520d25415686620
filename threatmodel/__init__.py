"""The threat model of the platform (OWASP pytm): data flows, trust boundaries, threats and the
controls that answer them, checked against the code by this package's tests."""
