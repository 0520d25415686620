"""The customer portal (/portal/) and the readings API (/api/): a customer's meters, usage,
CSV export, consents and API tokens. Reads go through `readings.selectors`."""
