"""Notifications: see views.py and services.py."""
