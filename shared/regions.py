"""Availability zones per AWS region: the regions an env may pick (``region``; commercial partition only), and the
AZ names its subnets default to (the first ``network.az_count``; the offline synth's ``getAvailabilityZones`` answer).
AZ names are each account's own in the oldest regions, so an account may lack these: ``network.availability_zones``
names the account's, and ``up``'s preflight checks them in the account (shared/orchestrate/account.py).

Add a region here to allow it, after checking what differs per region (tests/test_regions.py fails until the first
four hold; the last two are for whoever adds it):
- every service the layers call has an endpoint there (botocore's endpoint data);
- S3 offers the account-regional bucket namespace there (the model-artifact buckets are created in it:
  shared/artifact_names.py ``NO_ACCOUNT_REGIONAL_NAMESPACE``);
- the region is in the ``aws`` partition (other partitions' domains and service principals differ);
- ELB's access-log delivery: the region's ELB account (shared/components/gateway.py ``ELB_LOG_DELIVERY_ACCOUNTS``,
  regions opened before August 2022), or the service principal (``ELB_LOG_DELIVERY_BY_PRINCIPAL``, the others);
- Fargate's AZ IDs, where it runs tasks in some AZs only (shared/fargate.py ``FARGATE_ZONE_IDS``; ECS guide,
  "Supported Regions for Amazon ECS on AWS Fargate");
- an opt-in region (one launched after March 2019) must be enabled in each account first (AWS Account Management
  guide, "Enable or disable AWS Regions in your account"); none here is.
"""

from __future__ import annotations

REGION_AZS: dict[str, tuple[str, ...]] = {
    "us-east-1": ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"),
    "us-east-2": ("us-east-2a", "us-east-2b", "us-east-2c"),
    "us-west-1": ("us-west-1a", "us-west-1c"),
    "us-west-2": ("us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"),
    "ca-central-1": ("ca-central-1a", "ca-central-1b", "ca-central-1d"),
    "sa-east-1": ("sa-east-1a", "sa-east-1b", "sa-east-1c"),
    "eu-west-1": ("eu-west-1a", "eu-west-1b", "eu-west-1c"),
    "eu-west-2": ("eu-west-2a", "eu-west-2b", "eu-west-2c"),
    "eu-west-3": ("eu-west-3a", "eu-west-3b", "eu-west-3c"),
    "eu-central-1": ("eu-central-1a", "eu-central-1b", "eu-central-1c"),
    "eu-north-1": ("eu-north-1a", "eu-north-1b", "eu-north-1c"),
    "ap-south-1": ("ap-south-1a", "ap-south-1b", "ap-south-1c"),
    "ap-southeast-1": ("ap-southeast-1a", "ap-southeast-1b", "ap-southeast-1c"),
    "ap-southeast-2": ("ap-southeast-2a", "ap-southeast-2b", "ap-southeast-2c"),
    "ap-northeast-1": ("ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"),
    "ap-northeast-2": ("ap-northeast-2a", "ap-northeast-2b", "ap-northeast-2c", "ap-northeast-2d"),
    "ap-northeast-3": ("ap-northeast-3a", "ap-northeast-3b", "ap-northeast-3c"),
}
