"""Give a moto_server IAM users with given inline policies, then turn its access control on.

Usage: moto_iam_users.py ENDPOINT < {"user name": [statement, ...], ...}

Creates (with auth still off) each user with one inline policy holding its
statements and an access key, and a user `admin` allowed everything (what the
test itself does: queues, reading back). Then POSTs /moto-api/reset-auth with
body 0: from the next request on, moto checks every request's credentials and
policies (server-wide, so use a server of its own).

Prints one JSON object: {"user name": {"access_key_id", "secret_access_key"}, ...}.
"""
import json
import sys
import urllib.request

import boto3

endpoint = sys.argv[1]
users = json.load(sys.stdin)
users["admin"] = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
iam = boto3.client(
    "iam",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
)
keys = {}
for name, statements in users.items():
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName=f"{name}-inline",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    k = iam.create_access_key(UserName=name)["AccessKey"]
    keys[name] = {"access_key_id": k["AccessKeyId"], "secret_access_key": k["SecretAccessKey"]}

# A form content type would make moto parse the body away: send it as plain text.
req = urllib.request.Request(
    f"{endpoint}/moto-api/reset-auth",
    data=b"0",
    method="POST",
    headers={"Content-Type": "text/plain"},
)
with urllib.request.urlopen(req) as r:
    assert r.status == 200, r.read()
print(json.dumps(keys))
