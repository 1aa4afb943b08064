"""Guided troubleshooting: analyse a pasted error, recommend sections, learn from feedback, escalate."""
