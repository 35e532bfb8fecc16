"""Comments: see views.py and services.py."""
