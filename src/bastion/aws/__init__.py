"""Bastion on AWS: the Lambda entry point that processes a bucket's S3 events.

`bastion.aws.lambda_handler` is the handler to configure (see `bastion.aws.lambda_s3`).
"""

from __future__ import annotations

from bastion.aws.lambda_s3 import lambda_handler as lambda_handler

__all__ = ["lambda_handler"]
