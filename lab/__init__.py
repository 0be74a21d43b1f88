"""lab: a local, end-to-end GitOps lab environment manager."""

__version__ = "0.1.0"
