"""The resource type tokens and envs the layer tests share (one spelling of each, as the synth writes it)."""

ENVS = ["dev", "staging", "prod"]

BROKER = "aws:mq/broker:Broker"
SG = "aws:ec2/securityGroup:SecurityGroup"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
PASSWORD = "random:index/randomPassword:RandomPassword"
KMS_KEY = "aws:kms/key:Key"

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
PROJECT = "aws:codebuild/project:Project"
WEBHOOK = "aws:codebuild/webhook:Webhook"

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"

PRIVATE_NS = "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace"
HTTP_NS = "aws:servicediscovery/httpNamespace:HttpNamespace"
CLOUD_MAP_SERVICE = "aws:servicediscovery/service:Service"
INSTANCE = "aws:servicediscovery/instance:Instance"

FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"

EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
