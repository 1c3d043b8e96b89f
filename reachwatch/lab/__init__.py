"""The lab: a censored network in namespaces, for tests and demos."""
