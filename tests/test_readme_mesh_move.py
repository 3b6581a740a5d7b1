"""README "Moving an env from appmesh to service-connect", step 5: the in-place `up` deletes the mesh, which the
policies `nox -s roles` prints from the new env file no longer grant (tests/test_deploy_role.py::
test_kept_policies_hold_the_deletes_of_a_change_that_removes_resources), so the step must say to print them with
`--keep`, or an operator who updates the role from the new file meets AccessDenied half-way through the mesh layer."""

from __future__ import annotations

from pathlib import Path

README = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())


def test_the_in_place_move_says_to_keep_the_app_mesh_grants() -> None:
    start = README.index("### Moving an env from `appmesh` to `service-connect`")
    step = README[README.index("5. Only for an env where a short outage is acceptable", start):]
    step = step[:step.index("The layers run in order")]
    assert "nox -s roles -- <env> --keep DIR" in step
