"""Packaging trainmq for AWS Lambda: the deployment zip behind ``trainmq package lambda``.

The Pulumi program that provisions the queues, bucket and function lives in
``deploy/aws/`` at the top of the repository, outside the package, so that
``import trainmq`` never imports Pulumi.
"""
