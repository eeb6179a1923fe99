"""The Julia side of an environment: the system images fresh jobs start with, and its warm sessions."""
