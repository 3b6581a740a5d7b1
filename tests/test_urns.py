"""The engine's URNs of a synth document (shared.urns): what the plan diff keys resources by, so that a change up a
parent chain shows on every resource whose URN the engine changes."""

from __future__ import annotations

from typing import Any

from shared.urns import engine_document
from tests.synth_helpers import spec_document

STACK = "urn:pulumi:prod::broker::pulumi:pulumi:Stack::broker-prod"
COMPONENT = "urn:pulumi:prod::broker::pulumi:pulumi:Stack$a:b:Component::c"
BUCKET = "urn:pulumi:prod::broker::a:b:Component$aws:s3/bucket:Bucket::c-bucket"
VERSIONING = "urn:pulumi:prod::broker::aws:s3/bucket:Bucket$aws:s3/bucketVersioning:BucketVersioning::c-bucket"


def _resource(urn: str, type_: str, parent: str | None, **more: Any) -> dict[str, Any]:
    return {"urn": urn, "type": type_, "name": urn.rsplit("::", 1)[-1], "parent": parent, **more}


DOCUMENT = {"resources": [
    _resource(COMPONENT, "a:b:Component", STACK),
    _resource(BUCKET, "aws:s3/bucket:Bucket", COMPONENT),
    _resource(VERSIONING, "aws:s3/bucketVersioning:BucketVersioning", BUCKET, dependencies=[BUCKET],
              property_dependencies={"bucket": [BUCKET]},
              aliases=["urn:pulumi:prod::broker::aws:s3/bucket:Bucket$aws:s3/bucketVersioningV2:"
                       "BucketVersioningV2::c-bucket",
                       "urn:pulumi:prod::broker::pulumi:pulumi:Stack$aws:s3/bucketVersioningV2:"
                       "BucketVersioningV2::c-old"]),
]}


def test_every_ancestor_s_type_is_in_the_urn_and_the_root_stack_s_is_not() -> None:
    component, bucket, versioning = engine_document(DOCUMENT)["resources"]
    assert component["urn"] == "urn:pulumi:prod::broker::a:b:Component::c"
    assert bucket["urn"] == "urn:pulumi:prod::broker::a:b:Component$aws:s3/bucket:Bucket::c-bucket"
    assert versioning["urn"] == ("urn:pulumi:prod::broker::a:b:Component$aws:s3/bucket:Bucket"
                                 "$aws:s3/bucketVersioning:BucketVersioning::c-bucket")
    assert versioning["parent"] == bucket["urn"] and versioning["dependencies"] == [bucket["urn"]]
    assert versioning["property_dependencies"] == {"bucket": [bucket["urn"]]}
    assert component["parent"] == STACK, "the root stack is not a resource of the document"


def test_an_alias_under_the_same_parent_gets_the_parent_s_chain_and_a_top_level_one_loses_the_stack() -> None:
    versioning = engine_document(DOCUMENT)["resources"][2]
    assert versioning["aliases"] == [
        "urn:pulumi:prod::broker::a:b:Component$aws:s3/bucket:Bucket$aws:s3/bucketVersioningV2:BucketVersioningV2"
        "::c-bucket",
        "urn:pulumi:prod::broker::aws:s3/bucketVersioningV2:BucketVersioningV2::c-old"]


def test_a_document_in_engine_urns_comes_back_the_same() -> None:
    once = engine_document(spec_document("prod", "compute"))
    assert engine_document(once) == once
    assert once != spec_document("prod", "compute"), "the synth's own URNs differ from the engine's"
    assert len({r["urn"] for r in once["resources"]}) == len(once["resources"])
