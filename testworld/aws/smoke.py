"""Exercise, against a running stand-in, exactly the AWS calls zerofn's
controller makes, and print what LocalStack answers.

    .testworld/localstack-venv/bin/python testworld/aws/smoke.py PORT

Talks only to http://127.0.0.1:PORT (credentials test/test, eu-west-1).
Resource names carry a per-run suffix, so it can run again on the same
instance. Each call prints as
    == Operation {request}
    -> {response, without ResponseMetadata}   or   !! ErrorCode (HTTP n): message
and the lines marked "** " are the observations README.md's matrix is built
from. Exit status is 0 unless the script itself breaks (AWS errors are
results, not failures).
"""

import io
import json
import sys
import time
import uuid
import zipfile

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 4566
ENDPOINT = f"http://127.0.0.1:{PORT}"
REGION = "eu-west-1"
RUN = uuid.uuid4().hex[:6]
CFG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
    proxies={},
)


def client(service, key="test"):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key="test",
        config=CFG,
    )


def short(obj, limit=1500):
    s = json.dumps(obj, default=str, sort_keys=True)
    return s if len(s) <= limit else s[:limit] + f"... ({len(s)} chars)"


def call(c, op, **kw):
    """Call op; print request and response; return the response or the
    ClientError (never raises on AWS errors)."""
    print(f"== {c.meta.service_model.service_name}.{op} {short(kw, 600)}")
    try:
        r = getattr(c, op)(**kw)
    except ClientError as e:
        err = e.response.get("Error", {})
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        print(f"!! {err.get('Code')} (HTTP {status}): {err.get('Message')}")
        return e
    r = dict(r)
    r.pop("ResponseMetadata", None)
    print(f"-> {short(r)}")
    return r


def err_code(r):
    return r.response["Error"]["Code"] if isinstance(r, ClientError) else None


def note(msg):
    print(f"** {msg}")


def zip_bytes(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


CODE = zip_bytes({"index.py": "def handler(event, context):\n    return {'ok': True}\n"})
LAYER = zip_bytes({"python/zerofn_layer.py": "X = 1\n"})

iam, sts, ec2, sqs, lam = (client(s) for s in ("iam", "sts", "ec2", "sqs", "lambda"))


def section(title):
    print(f"\n######## {title}")


# ---------------------------------------------------------------- STS
section("sts")
ident = call(sts, "get_caller_identity")
ACCOUNT = ident["Account"]
note(f"account id: {ACCOUNT}")
other = call(client("sts", key="111122223333"), "get_caller_identity")
note(f"a 12-digit access key id selects that account: {other.get('Account')}")

# ---------------------------------------------------------------- IAM
section("iam")
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
INLINE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}
    ],
}
role_name = f"zerofn-smoke-{RUN}"
role = call(
    iam,
    "create_role",
    RoleName=role_name,
    Path="/zerofn/",
    AssumeRolePolicyDocument=json.dumps(TRUST),
    Description="zerofn smoke",
    Tags=[{"Key": "zerofn.dev/owner", "Value": "smoke"}],
)
ROLE_ARN = role["Role"]["Arn"]
note(f"role ARN with path: {ROLE_ARN}")
plain = call(
    iam,
    "create_role",
    RoleName=f"zerofn-smoke-plain-{RUN}",
    AssumeRolePolicyDocument=json.dumps(TRUST),
)
PLAIN_ROLE_ARN = plain["Role"]["Arn"]
dup = call(iam, "create_role", RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST))
note(f"duplicate CreateRole: {err_code(dup)}")

call(iam, "put_role_policy", RoleName=role_name, PolicyName="inline-logs", PolicyDocument=json.dumps(INLINE))
gp = call(iam, "get_role_policy", RoleName=role_name, PolicyName="inline-logs")
note(f"GetRolePolicy PolicyDocument type after boto3 decoding: {type(gp['PolicyDocument']).__name__}")
call(iam, "list_role_policies", RoleName=role_name)
r = call(iam, "get_role_policy", RoleName=role_name, PolicyName="nope")
note(f"GetRolePolicy of a missing policy: {err_code(r)}")

cust = call(
    iam,
    "create_policy",
    PolicyName=f"zerofn-smoke-cust-{RUN}",
    Path="/zerofn/",
    PolicyDocument=json.dumps(INLINE),
)
CUST_ARN = cust["Policy"]["Arn"]
boundary = call(
    iam,
    "create_policy",
    PolicyName=f"zerofn-smoke-boundary-{RUN}",
    PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    ),
)
BOUNDARY_ARN = boundary["Policy"]["Arn"]
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
VPC_EXEC = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
call(iam, "attach_role_policy", RoleName=role_name, PolicyArn=ADMIN)
call(iam, "attach_role_policy", RoleName=role_name, PolicyArn=CUST_ARN)
call(iam, "attach_role_policy", RoleName=role_name, PolicyArn=VPC_EXEC)
r = call(iam, "attach_role_policy", RoleName=role_name, PolicyArn="arn:aws:iam::aws:policy/ZerofnNoSuchPolicy")
note(f"attach a non-existent AWS managed policy: {err_code(r) or 'accepted'}")
call(iam, "list_attached_role_policies", RoleName=role_name)
call(iam, "detach_role_policy", RoleName=role_name, PolicyArn=VPC_EXEC)
r = call(iam, "detach_role_policy", RoleName=role_name, PolicyArn=VPC_EXEC)
note(f"detach a policy that is not attached: {err_code(r) or 'accepted'}")
att = call(iam, "list_attached_role_policies", RoleName=role_name)
note(f"attached after detach: {[p['PolicyArn'] for p in att['AttachedPolicies']]}")
call(iam, "put_role_permissions_boundary", RoleName=role_name, PermissionsBoundary=BOUNDARY_ARN)
gr = call(iam, "get_role", RoleName=role_name)
rr = gr["Role"]
note(
    "GetRole fields: "
    + ", ".join(f"{k}={'yes' if k in rr else 'NO'}" for k in ("Path", "Tags", "PermissionsBoundary", "RoleLastUsed", "MaxSessionDuration", "Description"))
)
note(f"GetRole AssumeRolePolicyDocument type after boto3 decoding: {type(rr['AssumeRolePolicyDocument']).__name__}")

# GetAccountAuthorizationDetails, paged with MaxItems=1
pages, roles, marker = 0, [], None
while True:
    kw = {"Filter": ["Role"], "MaxItems": 1}
    if marker:
        kw["Marker"] = marker
    page = call(iam, "get_account_authorization_details", **kw)
    if isinstance(page, ClientError):
        break
    pages += 1
    roles += page.get("RoleDetailList", [])
    extra = [k for k in page if k not in ("RoleDetailList", "IsTruncated", "Marker")]
    if extra and pages == 1:
        note(f"GAAD with Filter=[Role] also returns: {extra}")
    if not page.get("IsTruncated") or pages > 200:
        break
    marker = page["Marker"]
note(f"GAAD MaxItems=1: {pages} pages, {len(roles)} roles (page sizes honoured: {pages == len(roles)})")
mine = [x for x in roles if x["RoleName"] == role_name]
if mine:
    d = mine[0]
    note(
        "GAAD role fields: "
        + ", ".join(
            f"{k}={'yes' if k in d else 'NO'}"
            for k in ("Path", "RolePolicyList", "AttachedManagedPolicies", "PermissionsBoundary", "Tags", "InstanceProfileList", "RoleLastUsed", "AssumeRolePolicyDocument")
        )
    )
    note(f"GAAD RolePolicyList: {short(d.get('RolePolicyList'))}")
    note(f"GAAD AttachedManagedPolicies: {short(d.get('AttachedManagedPolicies'))}")
    note(f"GAAD PermissionsBoundary: {short(d.get('PermissionsBoundary'))}")
    note(f"GAAD Tags: {short(d.get('Tags'))}")
else:
    note("GAAD: our role NOT FOUND")
full = call(iam, "get_account_authorization_details", Filter=["Role"])
note(f"GAAD unpaged: {len(full.get('RoleDetailList', []))} roles, IsTruncated={full.get('IsTruncated')}")

# ---------------------------------------------------------------- EC2
section("ec2 (for VpcConfig)")
vpc = call(ec2, "create_vpc", CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
subnet = call(ec2, "create_subnet", VpcId=vpc, CidrBlock="10.42.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
sg = call(ec2, "create_security_group", GroupName=f"zerofn-smoke-{RUN}", Description="smoke", VpcId=vpc)["GroupId"]

# ---------------------------------------------------------------- Lambda
section("lambda: create, states")


def cfg(name):
    return lam.get_function_configuration(FunctionName=name)


def watch(name, seconds=5.0):
    """(State, LastUpdateStatus) sequence seen by polling for a while."""
    seen, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        c = cfg(name)
        s = (c.get("State"), c.get("LastUpdateStatus"))
        if not seen or seen[-1] != s:
            seen.append(s)
        if s == ("Active", "Successful") and len(seen) > 0 and time.monotonic() > end - seconds + 0.5:
            break
        time.sleep(0.02)
    return seen


fn = f"zerofn-smoke-{RUN}"
created = call(
    lam,
    "create_function",
    FunctionName=fn,
    Runtime="python3.12",
    Role=ROLE_ARN,
    Handler="index.handler",
    Code={"ZipFile": CODE},
    Tags={"zerofn.dev/owner": "smoke"},
)
FN_ARN = created["FunctionArn"]
note(f"CreateFunction returns State={created.get('State')} LastUpdateStatus={created.get('LastUpdateStatus')}")
note(f"states after create: {watch(fn)}")
others = []
for i in range(3):
    n = f"zerofn-smoke-{RUN}-{i}"
    call(lam, "create_function", FunctionName=n, Runtime="python3.12", Role=PLAIN_ROLE_ARN, Handler="index.handler", Code={"ZipFile": CODE})
    others.append(n)
for n in others:
    watch(n, 2)

section("lambda: ListFunctions")
pages, fns, marker, biggest = 0, [], None, 0
while True:
    kw = {"MaxItems": 2}
    if marker:
        kw["Marker"] = marker
    page = lam.list_functions(**kw)
    pages += 1
    fns += page["Functions"]
    biggest = max(biggest, len(page["Functions"]))
    marker = page.get("NextMarker")
    if not marker or pages > 500:
        break
note(f"ListFunctions MaxItems=2: {pages} pages, {len(fns)} functions, largest page {biggest}")
lf = call(lam, "list_functions", MaxItems=50)
mine = [f for f in lf["Functions"] if f["FunctionName"] == fn]
if mine:
    f = mine[0]
    note(
        "ListFunctions fields (before any update): "
        + ", ".join(f"{k}={'yes' if k in f else 'NO'}" for k in ("Role", "VpcConfig", "TracingConfig", "LoggingConfig", "Layers", "State", "LastUpdateStatus", "CodeSigningConfigArn", "RevisionId", "PackageType", "Architectures"))
    )
    note(f"ListFunctions entry: {short(f)}")

section("lambda: UpdateFunctionConfiguration")
g = call(lam, "get_function_configuration", FunctionName=fn)
note(f"defaults: TracingConfig={g.get('TracingConfig')} LoggingConfig={g.get('LoggingConfig')} VpcConfig={g.get('VpcConfig')}")

u = call(lam, "update_function_configuration", FunctionName=fn, Role=PLAIN_ROLE_ARN)
note(f"UpdateFunctionConfiguration(Role) returns LastUpdateStatus={u.get('LastUpdateStatus')}")
u2 = call(lam, "update_function_configuration", FunctionName=fn, Role=ROLE_ARN)
note(f"second update right after the first: {err_code(u2) or 'accepted'}")
note(f"transitions after update: {watch(fn)}")

r = call(lam, "update_function_configuration", FunctionName=fn, Role=f"arn:aws:iam::{ACCOUNT}:role/zerofn-no-such-role-{RUN}")
note(f"update with a role that does not exist: {err_code(r) or 'accepted'}")
watch(fn, 1)
r = call(lam, "update_function_configuration", FunctionName=fn, Role="not-an-arn")
note(f"update with a malformed role ARN: {err_code(r) or 'accepted'}")
watch(fn, 1)
call(lam, "update_function_configuration", FunctionName=fn, Role=ROLE_ARN)
watch(fn, 1)

r = call(lam, "update_function_configuration", FunctionName=fn, VpcConfig={"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123456789abcdef0"]})
note(f"VpcConfig with ids unknown to EC2: {err_code(r) or 'accepted'}")
watch(fn, 1)
r = call(lam, "update_function_configuration", FunctionName=others[0], VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [sg]})
note(f"VpcConfig with real ids, role WITHOUT ENI permissions: {err_code(r) or 'accepted'}")
watch(others[0], 1)
r = call(lam, "update_function_configuration", FunctionName=fn, VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [sg]})
note(f"VpcConfig with real ids: {err_code(r) or 'accepted'}; transitions {watch(fn)}")
c = cfg(fn)
note(f"VpcConfig now: {c.get('VpcConfig')}")

r = call(lam, "update_function_configuration", FunctionName=fn, TracingConfig={"Mode": "Active"})
note(f"TracingConfig Active: {err_code(r) or 'accepted'}; transitions {watch(fn)}")
r = call(lam, "update_function_configuration", FunctionName=fn, LoggingConfig={"LogFormat": "JSON"})
note(f"LoggingConfig JSON: {err_code(r) or 'accepted'}; transitions {watch(fn)}")
c = cfg(fn)
note(f"after updates: Role={c.get('Role')} TracingConfig={c.get('TracingConfig')} LoggingConfig={c.get('LoggingConfig')}")
r = call(lam, "update_function_configuration", FunctionName=fn, VpcConfig={"SubnetIds": [], "SecurityGroupIds": []})
note(f"remove VPC (empty lists): {err_code(r) or 'accepted'}; transitions {watch(fn)}; VpcConfig now {cfg(fn).get('VpcConfig')}")
call(lam, "update_function_configuration", FunctionName=fn, VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [sg]})
watch(fn, 1)

lf = lam.list_functions(MaxItems=50)
for f in lf["Functions"]:
    if f["FunctionName"] == fn:
        note(
            "ListFunctions fields (after updates): "
            + ", ".join(f"{k}={'yes' if k in f else 'NO'}" for k in ("Role", "VpcConfig", "TracingConfig", "LoggingConfig", "Layers", "State", "LastUpdateStatus"))
        )
        note(f"ListFunctions VpcConfig={f.get('VpcConfig')} TracingConfig={f.get('TracingConfig')} LoggingConfig={f.get('LoggingConfig')}")

section("lambda: resource policy")
r = call(
    lam,
    "add_permission",
    FunctionName=fn,
    StatementId="s3-invoke",
    Action="lambda:InvokeFunction",
    Principal="s3.amazonaws.com",
    SourceArn="arn:aws:s3:::zerofn-smoke-bucket",
    SourceAccount=ACCOUNT,
)
note(f"AddPermission Statement is a JSON string: {isinstance(r.get('Statement'), str) if isinstance(r, dict) else r}")
call(lam, "add_permission", FunctionName=fn, StatementId="s3-no-account", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::zerofn-smoke-bucket")
call(lam, "add_permission", FunctionName=fn, StatementId="public-invoke", Action="lambda:InvokeFunction", Principal="*")
call(lam, "add_permission", FunctionName=fn, StatementId="account-invoke", Action="lambda:InvokeFunction", Principal=ACCOUNT)
r = call(lam, "add_permission", FunctionName=fn, StatementId="public-invoke", Action="lambda:InvokeFunction", Principal="*")
note(f"duplicate Sid: {err_code(r) or 'accepted'} (HTTP {r.response['ResponseMetadata']['HTTPStatusCode'] if isinstance(r, ClientError) else 200})")
pol = call(lam, "get_policy", FunctionName=fn)
doc = json.loads(pol["Policy"])
print("** GetPolicy document:\n" + json.dumps(doc, indent=2))
call(lam, "remove_permission", FunctionName=fn, StatementId="public-invoke")
r = call(lam, "remove_permission", FunctionName=fn, StatementId="public-invoke")
note(f"RemovePermission of a missing Sid: {err_code(r) or 'accepted'}")
r = call(lam, "get_policy", FunctionName=others[1])
note(f"GetPolicy without any policy: {err_code(r)}")

section("lambda: function URL")
r = call(lam, "get_function_url_config", FunctionName=fn)
note(f"GetFunctionUrlConfig without a URL: {err_code(r)}")
url = call(lam, "create_function_url_config", FunctionName=fn, AuthType="NONE")
sids = [s["Sid"] for s in json.loads(lam.get_policy(FunctionName=fn)["Policy"])["Statement"]]
note(f"after CreateFunctionUrlConfig(NONE) the policy Sids are: {sids}")
call(lam, "add_permission", FunctionName=fn, StatementId="FunctionURLAllowPublicAccess", Action="lambda:InvokeFunctionUrl", Principal="*", FunctionUrlAuthType="NONE")
doc = json.loads(lam.get_policy(FunctionName=fn)["Policy"])
note(f"InvokeFunctionUrl statement: {short([s for s in doc['Statement'] if s['Sid'] == 'FunctionURLAllowPublicAccess'])}")
call(lam, "get_function_url_config", FunctionName=fn)
call(lam, "update_function_url_config", FunctionName=fn, AuthType="AWS_IAM")
g = call(lam, "get_function_url_config", FunctionName=fn)
note(f"AuthType after update: {g.get('AuthType')}")
call(lam, "delete_function_url_config", FunctionName=fn)
r = call(lam, "get_function_url_config", FunctionName=fn)
note(f"GetFunctionUrlConfig after delete: {err_code(r)}")
call(lam, "create_function_url_config", FunctionName=fn, AuthType="NONE")
call(lam, "list_function_url_configs", FunctionName=fn)

section("lambda: event source mappings (SQS)")
q = call(sqs, "create_queue", QueueName=f"zerofn-smoke-{RUN}")
qarn = sqs.get_queue_attributes(QueueUrl=q["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
esm = call(lam, "create_event_source_mapping", FunctionName=fn, EventSourceArn=qarn, Enabled=True, BatchSize=10)
uuid_ = esm.get("UUID") if isinstance(esm, dict) else None
if uuid_:
    seen, end = [esm.get("State")], time.monotonic() + 10
    while time.monotonic() < end and seen[-1] != "Enabled":
        s = lam.get_event_source_mapping(UUID=uuid_)["State"]
        if s != seen[-1]:
            seen.append(s)
        time.sleep(0.05)
    note(f"ESM states after create: {seen}")
    lst = call(lam, "list_event_source_mappings")
    note(f"ListEventSourceMappings without filter sees ours: {any(m['UUID'] == uuid_ for m in lst['EventSourceMappings'])}; fields {sorted(lst['EventSourceMappings'][0]) if lst['EventSourceMappings'] else []}")
    q2 = sqs.create_queue(QueueName=f"zerofn-smoke-{RUN}-2")["QueueUrl"]
    q2arn = sqs.get_queue_attributes(QueueUrl=q2, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    call(lam, "create_event_source_mapping", FunctionName=others[0], EventSourceArn=q2arn, Enabled=True)
    pages, seen_uuids, marker = 0, [], None
    while pages < 100:
        kw = {"MaxItems": 1}
        if marker:
            kw["Marker"] = marker
        page = lam.list_event_source_mappings(**kw)
        pages += 1
        seen_uuids += [m["UUID"] for m in page["EventSourceMappings"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    note(f"ListEventSourceMappings MaxItems=1: {pages} pages, {len(seen_uuids)} mappings")
    call(lam, "list_event_source_mappings", FunctionName=fn)
    up = call(lam, "update_event_source_mapping", UUID=uuid_, Enabled=False)
    seen, end = [up.get("State")], time.monotonic() + 10
    while time.monotonic() < end and seen[-1] != "Disabled":
        s = lam.get_event_source_mapping(UUID=uuid_)["State"]
        if s != seen[-1]:
            seen.append(s)
        time.sleep(0.05)
    note(f"ESM states after Enabled=false: {seen}")
r = call(lam, "create_event_source_mapping", FunctionName=fn, EventSourceArn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:zerofn-no-such-queue-{RUN}", Enabled=True)
note(f"ESM from a queue that does not exist: {err_code(r) or 'accepted'}")

section("lambda: code signing")
PROFILE = f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/zerofn_smoke/abcdef0123"
warn = call(
    lam,
    "create_code_signing_config",
    Description="warn",
    AllowedPublishers={"SigningProfileVersionArns": [PROFILE]},
    CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Warn"},
)
enforce = call(
    lam,
    "create_code_signing_config",
    Description="enforce",
    AllowedPublishers={"SigningProfileVersionArns": [PROFILE]},
    CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Enforce"},
)
CSC = enforce["CodeSigningConfig"]["CodeSigningConfigArn"]
r = call(lam, "get_function_code_signing_config", FunctionName=fn)
note(f"GetFunctionCodeSigningConfig without one: {short(r) if isinstance(r, dict) else err_code(r)}")
call(lam, "put_function_code_signing_config", FunctionName=fn, CodeSigningConfigArn=CSC)
call(lam, "get_function_code_signing_config", FunctionName=fn)
call(lam, "get_code_signing_config", CodeSigningConfigArn=CSC)
r = call(lam, "put_function_code_signing_config", FunctionName=others[2], CodeSigningConfigArn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:csc-0123456789abcdef0")
note(f"PutFunctionCodeSigningConfig with an unknown CSC: {err_code(r) or 'accepted'}")
r = call(lam, "update_function_code", FunctionName=fn, ZipFile=CODE)
note(f"UpdateFunctionCode with unsigned code under Enforce: {err_code(r) or 'accepted'}")
watch(fn, 1)
note(f"GetFunctionConfiguration shows CodeSigningConfigArn: {'CodeSigningConfigArn' in cfg(fn)}")

section("lambda: layers")
lv = call(lam, "publish_layer_version", LayerName=f"zerofn-smoke-{RUN}", Content={"ZipFile": LAYER}, CompatibleRuntimes=["python3.12"])
LV_ARN = lv["LayerVersionArn"]
r = call(lam, "update_function_configuration", FunctionName=fn, Layers=[LV_ARN])
note(f"Layers update: {err_code(r) or 'accepted'}; transitions {watch(fn)}")
layer_fn = f"zerofn-smoke-{RUN}-layered"
call(lam, "create_function", FunctionName=layer_fn, Runtime="python3.12", Role=ROLE_ARN, Handler="index.handler", Code={"ZipFile": CODE}, Layers=[LV_ARN])
watch(layer_fn, 2)
r = call(lam, "update_function_configuration", FunctionName=others[2], Layers=[f"arn:aws:lambda:{REGION}:123456789012:layer:zerofn-foreign:1"])
note(f"Layers with a layer of another account that does not exist: {err_code(r) or 'accepted'}")
watch(others[2], 1)
for f in lam.list_functions(MaxItems=50)["Functions"]:
    if f["FunctionName"] in (fn, layer_fn):
        note(f"ListFunctions {f['FunctionName']} Layers={f.get('Layers')}")

section("lambda: tags")
call(lam, "tag_resource", Resource=FN_ARN, Tags={"zerofn.dev/owner": "team-a", "zerofn.dev/managed": "true"})
call(lam, "list_tags", Resource=FN_ARN)
call(lam, "untag_resource", Resource=FN_ARN, TagKeys=["zerofn.dev/managed"])
t = call(lam, "list_tags", Resource=FN_ARN)
note(f"tags after untag: {t.get('Tags')}")
r = call(lam, "list_tags", Resource=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:zerofn-no-such-{RUN}")
note(f"ListTags of a missing function: {err_code(r)}")

section("lambda: GetFunction, invoke")
gf = call(lam, "get_function", FunctionName=fn)
note(f"GetFunction top-level keys: {sorted(gf) if isinstance(gf, dict) else gf}")
t0 = time.monotonic()
inv = lam.invoke(FunctionName=fn, Payload=b"{}")
note(f"Invoke: HTTP {inv['StatusCode']} FunctionError={inv.get('FunctionError')} payload={inv['Payload'].read()!r} in {time.monotonic() - t0:.2f}s")
r = call(lam, "delete_function", FunctionName=others[1])
r = call(lam, "get_function_configuration", FunctionName=others[1])
note(f"GetFunctionConfiguration after delete: {err_code(r)}")

section("lambda: update conflicts (meaningful with ZEROFN_LAMBDA_PREPARE_DELAY_MS > 0)")
cfn = f"zerofn-smoke-{RUN}-conflict"
lam.create_function(FunctionName=cfn, Runtime="python3.12", Role=ROLE_ARN, Handler="index.handler", Code={"ZipFile": CODE})
r = call(lam, "update_function_configuration", FunctionName=cfn, MemorySize=256)
note(f"update right after create: {err_code(r) or 'accepted'}")
watch(cfn, 10)
call(lam, "update_function_configuration", FunctionName=cfn, MemorySize=512)
r = call(lam, "update_function_configuration", FunctionName=cfn, MemorySize=1024)
note(f"second update right after the first: {err_code(r) or 'accepted'}")
watch(cfn, 10)
note(f"MemorySize after settling (512 if a refused update changed nothing): {cfg(cfn)['MemorySize']}")

section("fault injection (/_zerofn/faults)")
import urllib.request


def faults(method, body=None):
    req = urllib.request.Request(f"{ENDPOINT}/_zerofn/faults", method=method, data=json.dumps(body).encode() if body else None)
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=5) as resp:
        return json.loads(resp.read())


print(f"-> {faults('POST', {'service': 'lambda', 'operation': 'GetPolicy', 'count': 1})}")
print(f"-> {faults('POST', {'service': 'iam', 'operation': 'GetAccountAuthorizationDetails', 'count': 1})}")
print(f"-> {faults('POST', {'service': 'ec2', 'operation': 'DescribeSubnets', 'count': 1})}")
r = call(lam, "get_policy", FunctionName=fn)
note(f"injected Lambda throttle: {err_code(r)} HTTP {r.response['ResponseMetadata']['HTTPStatusCode'] if isinstance(r, ClientError) else 200}")
r = call(iam, "get_account_authorization_details", Filter=["Role"])
note(f"injected IAM throttle: {err_code(r)} HTTP {r.response['ResponseMetadata']['HTTPStatusCode'] if isinstance(r, ClientError) else 200}")
r = call(ec2, "describe_subnets")
note(f"injected EC2 throttle: {err_code(r)} HTTP {r.response['ResponseMetadata']['HTTPStatusCode'] if isinstance(r, ClientError) else 200}")
r = call(lam, "get_policy", FunctionName=fn)
note(f"after the count is used up: {err_code(r) or 'ok'}")
print(f"-> {faults('DELETE')}")

print("\nsmoke: done")
