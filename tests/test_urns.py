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


def test_every_reference_in_an_engine_document_names_one_of_its_resources() -> None:
    """Parents, providers and dependencies follow the resources they name: the plan diff matches a replaced resource's
    readers by them (a delete-first replacement several levels down takes its readers with it)."""
    from shared.synth.engine import synth_env

    document = engine_document(synth_env("prod", ["broker"])["broker"])
    urns = {resource["urn"] for resource in document["resources"]}
    nested = [r for r in document["resources"] if str(r["urn"]).split("::")[2].count("$") >= 2]
    assert nested, "resources below a component's child, whose URNs the engine changes"
    for resource in document["resources"]:
        for key in ("parent", "provider"):
            assert not resource.get(key) or resource[key] in urns or "::pulumi:pulumi:Stack::" in resource[key], \
                (key, resource[key])
        assert set(resource.get("dependencies", ())) <= urns, resource["urn"]
        for named in resource.get("property_dependencies", {}).values():
            assert set(named) <= urns, resource["urn"]


def test_a_name_may_hold_the_separator() -> None:
    """A URN's name is what follows its third ``::`` (Pulumi's URN format), "::" in it included."""
    resource = _resource("urn:pulumi:prod::broker::a:b:Component$aws:s3/bucket:Bucket::c::bucket",
                         "aws:s3/bucket:Bucket", COMPONENT)
    resource["aliases"] = ["urn:pulumi:prod::broker::pulumi:pulumi:Stack$aws:s3/bucket:Bucket::c::old"]  # top-level
    (_, converted) = engine_document({"resources": [DOCUMENT["resources"][0], resource]})["resources"]
    assert converted["urn"] == "urn:pulumi:prod::broker::a:b:Component$aws:s3/bucket:Bucket::c::bucket"
    assert converted["aliases"] == ["urn:pulumi:prod::broker::aws:s3/bucket:Bucket::c::old"]
