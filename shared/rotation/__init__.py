"""Secrets Manager rotation functions of the platform (their source ships inline to AWS Lambda)."""
