"""Set up IAM on a moto_server for the access-proof tests, then turn its access control on.

Usage: moto_access_setup.py ENDPOINT BUCKET PREFIX EXTERNAL_ID

Creates (with auth still off) an IAM user `curlew` allowed sts:AssumeRole, its
access key, and a role `curlew-reader` whose trust policy names that user with
an sts:ExternalId StringEquals condition and whose inline policy is curlew's
least-privilege read policy (s3:GetObject on bucket/prefix*, s3:ListBucket
with an s3:prefix condition, s3:GetBucketLocation). Then POSTs
/moto-api/reset-auth with body 0: from the next request on, moto checks every
request's credentials and policies (server-wide, so use a server of its own).

Prints one JSON line: access_key_id, secret_access_key, role_arn, user_arn.
"""
import json
import sys
import urllib.request

import boto3

endpoint, bucket, prefix, external_id = sys.argv[1:5]
kw = dict(
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
)
iam = boto3.client("iam", **kw)


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


user = iam.create_user(UserName="curlew")["User"]
iam.put_user_policy(
    UserName="curlew",
    PolicyName="assume-customer-roles",
    PolicyDocument=doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}),
)
key = iam.create_access_key(UserName="curlew")["AccessKey"]
trust = doc(
    {
        "Effect": "Allow",
        "Principal": {"AWS": user["Arn"]},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
    }
)
role = iam.create_role(RoleName="curlew-reader", AssumeRolePolicyDocument=trust)["Role"]
iam.put_role_policy(
    RoleName="curlew-reader",
    PolicyName="curlew-read",
    PolicyDocument=doc(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"},
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{bucket}",
            "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        },
        {"Effect": "Allow", "Action": "s3:GetBucketLocation", "Resource": f"arn:aws:s3:::{bucket}"},
    ),
)
# A form content type would make moto parse the body away: send it as plain text.
req = urllib.request.Request(
    f"{endpoint}/moto-api/reset-auth",
    data=b"0",
    method="POST",
    headers={"Content-Type": "text/plain"},
)
with urllib.request.urlopen(req) as r:
    assert r.status == 200, r.read()
print(
    json.dumps(
        {
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
            "role_arn": role["Arn"],
            "user_arn": user["Arn"],
        }
    ),
    flush=True,
)
