"""Changes that delete what the new env file's synth no longer grants need the policies printed with `--keep`.

README "Moving an env from appmesh to service-connect", step 5: the in-place `up` deletes the mesh, which the
policies `nox -s roles` prints from the new env file no longer grant (tests/test_deploy_role.py::
test_kept_policies_hold_the_deletes_of_a_change_that_removes_resources), so the step must say to print them with
`--keep`, or an operator who updates the role from the new file meets AccessDenied half-way through the mesh layer."""

from __future__ import annotations

from tests.readme_helpers import readme_rendered

README = readme_rendered()


def test_the_in_place_move_says_to_keep_the_app_mesh_grants() -> None:
    start = README.index("### Moving an env from `appmesh` to `service-connect`")
    step = README[README.index("5. Only for an env where a short outage is acceptable", start):]
    step = step[:step.index("The layers run in order")]
    assert "nox -s roles -- <env> --keep DIR" in step


#: The env-key changes whose deletes the new file's synth grants no more (README, A fresh account, in order, step 4:
#: "App Mesh, compute.public_gateway, an amazon-mq broker, the old namespace's Cloud Map services of an App Mesh
#: env's discovery.namespace change"): each row must send the operator to --keep.
NEEDS_KEEP = {("mesh.provider", "appmesh to service-connect"), ("compute.public_gateway", "true to false"),
              ("messaging.broker", "amazon-mq to external"), ("discovery.namespace", "")}


def test_each_env_key_row_whose_deletes_lose_their_grants_names_keep() -> None:
    from tests.test_env_key_changes import MATRIX

    rows = {(case.key, case.detail): case.effect for case in MATRIX}
    assert NEEDS_KEEP <= set(rows)
    for row in sorted(NEEDS_KEEP):
        assert "`--keep`" in rows[row], row
