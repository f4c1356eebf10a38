"""A real S3-compatible server on loopback for the DVC tests: moto in server mode, with credentials enforced.

Run with a Python that has moto[server] (`python tests/moto_s3.py`): it starts moto on 127.0.0.1 (a free
port), creates an IAM user allowed s3:*, an access key for it and a bucket `dvc`, then turns on moto's IAM
authentication (INITIAL_NO_AUTH_ACTION_COUNT: only the setup requests go unauthenticated), prints one JSON
line {endpoint, bucket, key_id, secret} and serves until its standard input closes.
"""

import json
import os
import sys

SETUP_REQUESTS = 3  # create_user, put_user_policy, create_access_key
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_REQUESTS)
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def main() -> None:
    server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    setup = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    iam = boto3.client("iam", aws_access_key_id="setup", aws_secret_access_key="setup", **setup)
    iam.create_user(UserName="dvc")
    iam.put_user_policy(UserName="dvc", PolicyName="s3", PolicyDocument=json.dumps(POLICY))
    key = iam.create_access_key(UserName="dvc")["AccessKey"]
    s3 = boto3.client("s3", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], **setup)
    s3.create_bucket(Bucket="dvc")
    print(
        json.dumps(
            {"endpoint": endpoint, "bucket": "dvc", "key_id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
        ),
        flush=True,
    )
    sys.stdin.read()  # serve until the test closes our stdin
    server.stop()


if __name__ == "__main__":
    main()
