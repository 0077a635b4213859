"""replygate: approvals by email for CI/CD pipelines, over Microsoft 365 and Graph."""

__version__ = "0.1.0"
