"""Accuracy of reachwatch's verdicts against labelled scenarios and OONI's own verdicts."""
