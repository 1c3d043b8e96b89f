"""Answers: blocking events with start and end, the answer card, and claims checked against
the evidence."""
